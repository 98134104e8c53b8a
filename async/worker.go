package async

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
)

// startWorkers runs up to Workers events at once from the shared
// consumer until Close.
func (a *Async) startWorkers(cons jetstream.Consumer) error {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.pull(a.ctx, cons, a.cfg.Workers, a.cfg.Workers, &a.wg, ConsumerWorkers, a.handle)
	}()
	return nil
}

// opCtx bounds one bookkeeping call (a KV write, a publish). It outlives
// Close on purpose: an invocation that finished must be recorded.
func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// handle runs one delivery of an event and settles the message: ack when the
// event is done with (succeeded, dead-lettered, failed, canceled, already
// done), nak with a delay to retry it later.
func (a *Async) handle(msg jetstream.Msg) {
	defer a.survive(ConsumerWorkers)
	ev, err := decodeEvent(msg.Headers(), msg.Data())
	if err != nil {
		a.log.Error("dropping undecodable async event", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	if ev.SeqSuffix {
		meta, err := msg.Metadata()
		if err != nil {
			// Without its sequence the event has no id to run under;
			// another delivery will have one.
			a.log.Warn("async event without metadata", "subject", msg.Subject(), "err", err)
			_ = msg.NakWithDelay(a.jitter(a.cfg.ThrottleDelay))
			return
		}
		ev.ID, ev.SeqSuffix = seqInvocationID(ev.ID, meta.Sequence.Stream), false
	}
	log := a.log.With("invocation", ev.ID, "function", ev.Function)
	dequeued := a.now()
	ctx, cancel := opCtx()
	defer cancel()

	st, rev, err := a.getStatus(ctx, ev.ID)
	if gust.ErrorCode(err) == gust.ENOTFOUND {
		// No record yet (an accept writes none, and one may have
		// expired while the event waited): the first update creates it.
		st, rev, err = queuedStatus(ev), 0, nil
	}
	if err != nil {
		log.Warn("reading status", "err", err)
		_ = msg.NakWithDelay(a.jitter(a.cfg.ThrottleDelay))
		return
	}
	if st.Final() {
		_ = msg.Ack() // a redelivery of an event that is done with
		return
	}

	v, err := a.cfg.Invoker.Resolve(ctx, ev.Function, ev.Ref)
	if err != nil {
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			a.finish(ctx, msg, ev, st, rev, StatusFailed, err, nil)
			return
		}
		log.Warn("resolving function", "err", err)
		_ = msg.NakWithDelay(a.jitter(a.cfg.ThrottleDelay))
		return
	}
	spec := v.Spec.WithDefaults()
	if age := a.now().Sub(ev.AcceptedAt); age > spec.MaxEventAge.D() {
		text := fmt.Sprintf("event is %s old, over the function's max event age of %s", age.Round(time.Second), spec.MaxEventAge)
		code := gust.ETIMEOUT
		if st.Error != "" {
			text, code = text+"; last error: "+st.Error, st.Code
		}
		err := gust.Errorf(code, "%s", text)
		a.deadLetter(ctx, msg, ev, st, rev, err)
		return
	}

	// The wait since the event was accepted, or since it was put back for
	// a retry or a throttle.
	queued := ev.AcceptedAt
	if st.NextAttemptAt != nil && st.NextAttemptAt.After(queued) {
		queued = *st.NextAttemptAt
	}
	// queued -> running, unless a cancel got there first: at once with a
	// plain Invoker; with a StartInvoker only once an instance is leased,
	// so that an event waiting for one stays queued and cancellable, and
	// its waits are not attempts.
	attempt := st.Attempts + 1
	started := false
	var startErr error
	markRunning := func() error {
		r, err := a.markRunning(st, rev, v.Number)
		if err != nil {
			startErr = err
			return err
		}
		rev, started = r, true
		return nil
	}
	var onStart func() error
	if a.starter != nil {
		onStart = markRunning
	} else if markRunning() != nil {
		a.notRunning(log, msg, startErr)
		return
	}

	tctx := a.cfg.Tracer.Dequeued(context.Background(), traceHeader(ev.Header), ev.ID, queued, dequeued)
	resp, err := a.run(tctx, msg, v, ev, attempt, onStart)
	ctx2, cancel2 := opCtx()
	defer cancel2()
	switch code := gust.ErrorCode(err); {
	case err == nil:
		a.finish(ctx2, msg, ev, st, rev, StatusSucceeded, nil, resp)
	case startErr != nil:
		// Refused when the instance was leased: canceled meanwhile.
		a.notRunning(log, msg, startErr)
	case code == gust.ETHROTTLED || code == gust.ECAPACITY || code == gust.EUNAVAILABLE:
		// Not an attempt: the function never ran.
		delay := a.jitter(a.cfg.ThrottleDelay)
		if started {
			// Marked running before the call (a plain Invoker): back to
			// queued. Waiting for an instance with a StartInvoker
			// changed nothing, and writes nothing.
			st.Status, st.Attempts, st.StartedAt = StatusQueued, st.Attempts-1, nil
			next := a.now().Add(delay)
			st.NextAttemptAt = &next
			if _, err := a.updateStatus(ctx2, st, rev); err != nil {
				log.Warn("marking throttled event queued", "err", err)
			}
		}
		_ = msg.NakWithDelay(delay)
	default:
		if !started {
			// It failed before it ran (its instance did not start): an
			// attempt all the same.
			st.Attempts = attempt
		}
		retries := *spec.Retries
		delay := a.backoff(spec.RetryBackoff.D(), st.Attempts)
		expires := ev.AcceptedAt.Add(spec.MaxEventAge.D())
		if st.Attempts > retries || a.now().Add(delay).After(expires) {
			a.deadLetter(ctx2, msg, ev, st, rev, err)
			return
		}
		st.Status, st.Error, st.Code = StatusQueued, gust.ErrorMessage(err), code
		next := a.now().Add(delay)
		st.NextAttemptAt = &next
		if _, err := a.updateStatus(ctx2, st, rev); err != nil {
			log.Warn("marking failed event for retry", "err", err)
		}
		log.Info("async attempt failed; retrying", "attempt", st.Attempts, "retryIn", delay.Round(time.Millisecond), "err", err)
		_ = msg.NakWithDelay(delay)
	}
}

// run invokes the function once as the given attempt, telling JetStream
// the event is in progress while it runs (and while it waits for an
// instance). ctx carries the trace the invocation continues. A non-nil
// started goes to the StartInvoker.
func (a *Async) run(ctx context.Context, msg jetstream.Msg, v *gust.Version, ev *Event, attempt int, started func() error) (*gust.Response, error) {
	header := ev.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set(HeaderInvocationID, ev.ID)
	header.Set(HeaderAttempt, strconv.Itoa(attempt))
	req := &gust.Request{
		ID: ev.ID, Method: ev.Method, Path: ev.Path, RawPath: ev.RawPath, Query: ev.Query,
		Header: header, Body: ev.Body, Trigger: ev.Trigger,
	}
	stop := a.heartbeat(msg)
	defer stop()
	return a.invokeRecovered(ev.Function, ev.ID, func() (*gust.Response, error) {
		if started != nil {
			return a.starter.InvokeStarted(ctx, v, req, started)
		}
		return a.cfg.Invoker.Invoke(ctx, v, req)
	})
}

// invokeRecovered runs one background invocation (an async event, a
// stream or subject message): a panic in it, which net/http would have
// caught on the sync path, here would take the node and every invocation
// in flight down with it. It becomes that invocation's EINTERNAL failure,
// retried and dead-lettered like any other, and its stack goes to the log.
func (a *Async) invokeRecovered(function, id string, call func() (*gust.Response, error)) (resp *gust.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("invocation panicked inside gust; recorded as an internal error",
				"function", function, "invocation", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, gust.Errorf(gust.EINTERNAL, "gust failed while running the invocation (a bug; the node logged it)")
		}
	}()
	return call()
}

// survive is deferred by the goroutine that handles one message: a panic
// outside the invocation (which invokeRecovered catches) is logged and the
// node lives on; the message, unsettled, comes back after its AckWait.
func (a *Async) survive(what string) {
	if p := recover(); p != nil {
		a.log.Error("handling a message panicked inside gust", "from", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}
}

// markRunning moves st, read at revision rev, to running as its next
// attempt on version, and returns the new revision. st is changed only if
// the write succeeds. Errors: ECONFLICT if the record changed meanwhile
// (canceled, or another delivery got there first).
func (a *Async) markRunning(st *Status, rev uint64, version int) (uint64, error) {
	// A fresh bound: with a StartInvoker this runs after the wait for an
	// instance, which may be longer than the dequeue's opCtx.
	ctx, cancel := opCtx()
	defer cancel()
	next := *st
	now := a.now()
	next.Status, next.Version = StatusRunning, version
	next.Attempts++
	next.StartedAt, next.NextAttemptAt = &now, nil
	r, err := a.updateStatus(ctx, &next, rev)
	if err != nil {
		return 0, err
	}
	*st = next
	return r, nil
}

// notRunning puts back an event whose move to running failed: canceled
// meanwhile, or another delivery of it; either way the next look settles
// it.
func (a *Async) notRunning(log *slog.Logger, msg jetstream.Msg, err error) {
	if gust.ErrorCode(err) != gust.ECONFLICT {
		log.Warn("marking running", "err", err)
	}
	_ = msg.NakWithDelay(a.jitter(a.cfg.ThrottleDelay / 5))
}

// heartbeat resets msg's AckWait every third of it until stop is called.
func (a *Async) heartbeat(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(a.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// finish records an end state and acks the event.
func (a *Async) finish(ctx context.Context, msg jetstream.Msg, ev *Event, st *Status, rev uint64, status string, err error, resp *gust.Response) {
	now := a.now()
	st.Status, st.FinishedAt, st.NextAttemptAt = status, &now, nil
	if err != nil {
		st.Error, st.Code = gust.ErrorMessage(err), gust.ErrorCode(err)
	} else {
		st.Error, st.Code = "", ""
	}
	if resp != nil {
		st.Response = newResult(resp, a.cfg.MaxResponseBytes)
	}
	recorded := true
	_, err = a.updateStatus(ctx, st, rev)
	if gust.ErrorCode(err) == gust.ECONFLICT {
		recorded, err = a.finishOverConflict(ctx, st)
	}
	if err != nil {
		// Losing the record is worse than a duplicate run: retry soon.
		a.log.Warn("recording the end of an invocation", "invocation", ev.ID, "status", status, "err", err)
		_ = msg.NakWithDelay(a.jitter(a.cfg.ThrottleDelay))
		return
	}
	_ = msg.Ack()
	if recorded {
		a.callback(ev, st)
	}
}

// finishOverConflict records st's end state after the record changed
// since this worker read it. If the record is already final (a cancel, or
// a redelivered copy that finished first) that end stands and st is not
// written. Otherwise st is written over the newer revision: this worker
// ran the event to the end, and acknowledging without a final record would
// leave the invocation "running" for good, which happened when a write
// whose reply was lost (a NATS server stopping) had in fact been applied.
func (a *Async) finishOverConflict(ctx context.Context, st *Status) (recorded bool, err error) {
	for range 3 {
		cur, rev, gerr := a.getStatus(ctx, st.ID)
		if gerr != nil && gust.ErrorCode(gerr) != gust.ENOTFOUND {
			return false, gerr
		}
		if gerr == nil && cur.Final() {
			return false, nil
		}
		if gerr != nil {
			rev = 0 // the record expired or was never made: create it
		}
		if _, err = a.updateStatus(ctx, st, rev); err == nil {
			return true, nil
		}
		if gust.ErrorCode(err) != gust.ECONFLICT {
			return false, err
		}
	}
	return false, err
}

// deadLetter stores ev with its last error in the DLQ stream, records the
// status and acks. The DLQ message id makes a repeat of this step (a crash
// between publish and ack) store one dead letter, not two.
func (a *Async) deadLetter(ctx context.Context, msg jetstream.Msg, ev *Event, st *Status, rev uint64, cause error) {
	dead := Dead{Error: gust.ErrorMessage(cause), Code: gust.ErrorCode(cause), Attempts: st.Attempts, DeadAt: a.now()}
	msgID := fmt.Sprintf("dead:%s:%d", ev.ID, ev.AcceptedAt.UnixNano())
	if err := a.publishDead(ctx, ev, dead, msgID); err != nil {
		a.log.Warn("dead-lettering failed; retrying", "invocation", ev.ID, "err", err)
		_ = msg.NakWithDelay(a.jitter(a.cfg.ThrottleDelay))
		return
	}
	a.log.Info("event dead-lettered", "invocation", ev.ID, "function", ev.Function, "attempts", st.Attempts, "err", dead.Error)
	a.finish(ctx, msg, ev, st, rev, StatusDeadLettered, cause, nil)
}

// backoff is the delay before the retry after attempt n (1-based): base
// doubling per attempt, capped, with jitter in [d/2, d) so a burst of
// failures does not retry in lockstep.
func (a *Async) backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + mrand.N(d/2)
}

// jitter returns a delay in [d, 2d).
func (a *Async) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + mrand.N(d)
}
