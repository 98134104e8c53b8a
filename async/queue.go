package async

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
)

// maxThrottleWait bounds how long a subject message waits for a throttled
// function before it is dropped (subjects are at most once anyway).
const maxThrottleWait = 30 * time.Second

func withDefaults(t gust.Trigger) gust.Trigger {
	if t.BatchSize == 0 {
		t.BatchSize = DefaultBatchSize
	}
	if t.MaxConcurrency == 0 {
		t.MaxConcurrency = DefaultMaxConcurrency
	}
	if t.MaxDeliveries == 0 {
		t.MaxDeliveries = DefaultMaxDeliveries
	}
	return t
}

// retryUntil waits out ctx for a few seconds between tries of start, for a
// trigger whose stream does not exist yet or whose NATS is away.
func (a *Async) retryUntil(ctx context.Context, what string, start func() error) bool {
	delay := 500 * time.Millisecond
	for {
		err := start()
		if err == nil {
			return true
		}
		a.log.Warn("trigger not started; retrying", "trigger", what, "retryIn", delay, "err", err)
		if !sleep(ctx, delay) {
			return false
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// runSubject serves a core NATS subject trigger until ctx ends: a queue
// subscription per function and trigger, so each message reaches one node,
// and at most t.MaxConcurrency invocations at once on this node.
func (a *Async) runSubject(ctx context.Context, name string, idx int, t gust.Trigger) {
	t = withDefaults(t)
	sem := make(chan struct{}, t.MaxConcurrency)
	var (
		mu     sync.Mutex
		closed bool
		wg     sync.WaitGroup
	)
	handler := func(m *nats.Msg) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		mu.Lock()
		if closed {
			mu.Unlock()
			<-sem
			return
		}
		wg.Add(1)
		mu.Unlock()
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a.deliverSubject(ctx, name, m)
		}()
	}
	var sub *nats.Subscription
	ok := a.retryUntil(ctx, describe(t), func() error {
		var err error
		sub, err = a.nc.QueueSubscribe(t.Subject, queueName(name, idx), handler)
		return err
	})
	if !ok {
		return
	}
	a.log.Info("subject trigger listening", "function", name, "subject", t.Subject)
	<-ctx.Done()
	_ = sub.Unsubscribe()
	mu.Lock()
	closed = true
	mu.Unlock()
	wg.Wait()
}

func (a *Async) deliverSubject(ctx context.Context, name string, m *nats.Msg) {
	id := a.cfg.NewID()
	ceID := id
	if mid := m.Header.Get(nats.MsgIdHdr); mid != "" {
		ceID = mid
	}
	h := ceHeader(CETypeNATS, "/gust/nats/"+name, ceID, m.Subject, contentType(m.Header), a.now())
	copyMsgHeader(h, m.Header)
	req := &gust.Request{ID: id, Method: http.MethodPost, Path: "/", Header: h, Body: m.Data, Trigger: "nats"}
	req.Header.Set(HeaderInvocationID, id)
	deadline := time.Now().Add(maxThrottleWait)
	for {
		v, err := a.cfg.Invoker.Resolve(ctx, name, "")
		if err != nil {
			a.log.Warn("subject trigger: resolving function", "function", name, "err", err)
			return
		}
		resp, err := a.cfg.Invoker.Invoke(ctx, v, req)
		if throttled(err) && time.Now().Before(deadline) {
			if !sleep(ctx, a.jitter(a.cfg.ThrottleDelay)) {
				return
			}
			continue
		}
		if err != nil {
			a.log.Warn("subject trigger: invocation failed; message dropped (subjects are at most once)", "function", name, "subject", m.Subject, "invocation", id, "err", err)
			return
		}
		if m.Reply != "" {
			// A request on the subject gets the function's answer.
			_ = m.Respond(resp.Body)
		}
		return
	}
}

func throttled(err error) bool {
	switch gust.ErrorCode(err) {
	case gust.ETHROTTLED, gust.ECAPACITY, gust.EUNAVAILABLE:
		return true
	}
	return false
}

func contentType(h nats.Header) string {
	if ct := h.Get("Content-Type"); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// copyMsgHeader passes a message's own headers on, except NATS's and gust's
// internal ones and anything the CloudEvent sets.
func copyMsgHeader(dst http.Header, src nats.Header) {
	for k, vs := range src {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "nats-") || strings.HasPrefix(lk, "gust-") || strings.HasPrefix(lk, "ce-") || lk == "content-type" {
			continue
		}
		if http.CanonicalHeaderKey(k) == HeaderInvocationID {
			continue
		}
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

// runStream serves a JetStream stream trigger until ctx ends: a durable
// consumer per function and trigger shared by every node, acked after a
// successful invocation and nak'd with a backoff after a failed one; the
// delivery that reaches t.MaxDeliveries is dead-lettered instead.
func (a *Async) runStream(ctx context.Context, name string, idx int, t gust.Trigger) {
	t = withDefaults(t)
	durable := durableName(name, idx)
	var cons jetstream.Consumer
	ok := a.retryUntil(ctx, describe(t), func() error {
		var err error
		cons, err = a.js.CreateOrUpdateConsumer(ctx, t.Stream, jetstream.ConsumerConfig{
			Durable:       durable,
			Description:   fmt.Sprintf("gust trigger %d of function %s", idx+1, name),
			FilterSubject: t.Filter,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       a.cfg.AckWait,
			MaxDeliver:    t.MaxDeliveries,
			MaxAckPending: max(1000, t.BatchSize*t.MaxConcurrency),
		})
		return err
	})
	if !ok {
		return
	}
	a.log.Info("stream trigger consuming", "function", name, "stream", t.Stream, "consumer", durable)
	var wg sync.WaitGroup
	defer wg.Wait()
	a.pull(ctx, cons, t.MaxConcurrency, t.BatchSize, &wg, t.Stream+"/"+durable, func(msg jetstream.Msg) {
		a.deliverStream(ctx, name, t, msg)
	})
}

func (a *Async) deliverStream(ctx context.Context, name string, t gust.Trigger, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return
	}
	id := a.cfg.NewID()
	attempt := int(meta.NumDelivered)
	// The id is the message's place in its stream, the same on every
	// delivery, so a function can tell a redelivery from a new message.
	ceID := fmt.Sprintf("%s-%d", meta.Stream, meta.Sequence.Stream)
	h := ceHeader(CETypeStream, "/gust/stream/"+meta.Stream, ceID, msg.Subject(), contentType(msg.Headers()), meta.Timestamp)
	copyMsgHeader(h, msg.Headers())
	h.Set(HeaderInvocationID, id)
	h.Set(HeaderAttempt, strconv.Itoa(attempt))
	req := &gust.Request{ID: id, Method: http.MethodPost, Path: "/", Header: h, Body: msg.Data(), Trigger: "stream"}

	var v *gust.Version
	stop := a.heartbeat(msg)
	for {
		v, err = a.cfg.Invoker.Resolve(ctx, name, "")
		if err == nil {
			_, err = a.cfg.Invoker.Invoke(ctx, v, req)
		}
		// Waiting for capacity is not a delivery: wait here, keeping the
		// message ours, instead of spending one of its MaxDeliveries.
		if (throttled(err) && gust.ErrorCode(err) != gust.EUNAVAILABLE) && sleep(ctx, a.jitter(a.cfg.ThrottleDelay)) {
			continue
		}
		break
	}
	stop()
	if err == nil {
		_ = msg.Ack()
		return
	}
	if ctx.Err() != nil || gust.ErrorCode(err) == gust.EUNAVAILABLE || gust.ErrorCode(err) == gust.ENOTFOUND {
		// Shutting down, or the function is going away: hand it back.
		_ = msg.NakWithDelay(a.cfg.ThrottleDelay)
		return
	}
	if attempt >= t.MaxDeliveries {
		ev := &Event{
			ID: id, Function: name, Method: req.Method, Path: req.Path, Header: h,
			Trigger: "stream", AcceptedAt: meta.Timestamp, Body: msg.Data(),
		}
		dctx, cancel := opCtx()
		defer cancel()
		dead := Dead{Error: gust.ErrorMessage(err), Code: gust.ErrorCode(err), Attempts: attempt, DeadAt: a.now()}
		if derr := a.publishDead(dctx, ev, dead, fmt.Sprintf("dead:%s:%s", name, ceID)); derr != nil {
			a.log.Error("stream trigger: dead-lettering failed; message kept", "function", name, "stream", meta.Stream, "seq", meta.Sequence.Stream, "err", derr)
			_ = msg.NakWithDelay(a.jitter(a.cfg.ThrottleDelay))
			return
		}
		a.log.Info("stream message dead-lettered", "function", name, "stream", meta.Stream, "seq", meta.Sequence.Stream, "deliveries", attempt, "err", err)
		_ = msg.TermWithReason("dead-lettered by gust")
		return
	}
	backoff := gust.DefaultRetryBackoff
	if v != nil {
		backoff = v.Spec.WithDefaults().RetryBackoff.D()
	}
	_ = msg.NakWithDelay(a.backoff(backoff, attempt))
}
