package async

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/gateway"
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
	defer a.survive("subject " + m.Subject)
	id := a.cfg.NewID()
	ceID := id
	if mid := m.Header.Get(nats.MsgIdHdr); mid != "" {
		ceID = mid
	}
	h := msgEventHeader(CETypeNATS, "/gust/nats/"+name, ceID, m.Subject, a.now(), m.Header)
	req := &gust.Request{ID: id, Method: http.MethodPost, Path: "/", Header: h, Body: m.Data, Trigger: "nats"}
	req.Header.Set(HeaderInvocationID, id)
	deadline := time.Now().Add(maxThrottleWait)
	for {
		v, err := a.cfg.Invoker.Resolve(ctx, name, "")
		if err != nil {
			a.log.Warn("subject trigger: resolving function", "function", name, "err", err)
			return
		}
		resp, err := a.invokeRecovered(name, id, func() (*gust.Response, error) { return a.cfg.Invoker.Invoke(ctx, v, req) })
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

// Content types of a CloudEvent in structured mode: the whole event,
// attributes and data, is the body (application/cloudevents+json, or a
// batch of them).
const ceStructuredPrefix = "application/cloudevents"

// msgEventHeader returns the headers a function is given for a NATS or
// stream message: the message's own headers, less those no sender may set
// (see sanitizeMsgHeader), as a CloudEvent in HTTP binary mode.
//
// A message that is a CloudEvent already keeps its sender's attributes:
// in binary mode (ce- headers with ce-specversion, per the CloudEvents NATS
// binding) only the required attributes it lacks are filled in with
// gust's; in structured mode (Content-Type application/cloudevents+json)
// it passes through as its sender made it, the event in the body. Any
// other message becomes an event of type typ from source, with id, subject
// and time t, its stray ce- headers replaced.
func msgEventHeader(typ, source, id, subject string, t time.Time, src nats.Header) http.Header {
	h := sanitizeMsgHeader(src)
	ct := h.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && strings.HasPrefix(mt, ceStructuredPrefix) {
		return h
	}
	if h.Get("Ce-Specversion") != "" {
		for k, v := range map[string]string{"Ce-Id": id, "Ce-Source": source, "Ce-Type": typ} {
			if h.Get(k) == "" {
				h.Set(k, v)
			}
		}
		return h
	}
	for k := range h {
		if isCEHeader(k) {
			delete(h, k)
		}
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	for k, vs := range ceHeader(typ, source, id, subject, ct, t) {
		h[k] = vs
	}
	return h
}

func isCEHeader(k string) bool { return len(k) > 3 && strings.EqualFold(k[:3], "ce-") }

// sanitizeMsgHeader copies a message's headers with canonical names,
// without those a sender must not set for a function: the ones the gateway
// strips from an outside caller's request (hop-by-hop headers,
// Authorization-Gust, and the X-Gust-Auth-* identity headers that
// functions trust because only a route's auth sets them; one rule, the
// gateway's, via ForwardHeader), NATS's own (Nats-*), gust's internal ones
// (Gust-*), and those gust sets per invocation (the invocation id, the
// attempt).
func sanitizeMsgHeader(src nats.Header) http.Header {
	in := make(http.Header, len(src))
	for k, vs := range src {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "nats-") || strings.HasPrefix(lk, "gust-") {
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		if ck == HeaderInvocationID || ck == HeaderAttempt {
			continue
		}
		in[ck] = append(in[ck], vs...)
	}
	return gateway.ForwardHeader(&http.Request{Header: in})
}

// runStream serves a JetStream stream trigger until ctx ends: a durable
// consumer per function and trigger shared by every node, acked after a
// successful invocation and nak'd with a backoff after a failed one; the
// attempt that reaches t.MaxDeliveries is dead-lettered instead.
//
// Attempts are counted here, not by JetStream's MaxDeliver: a message is
// also handed back without being tried (its node shutting down, its
// trigger being replaced), and each such return is a delivery to
// JetStream. With MaxDeliver set to MaxDeliveries those returns used up
// its attempts, and once they were spent JetStream stopped delivering it:
// never run, never dead-lettered. So the consumer redelivers without
// limit, a return is counted in the handbacks bucket (handbackKey), and an
// attempt is a delivery that was not a return. Waiting for a function
// that is throttled, unavailable or briefly unknown happens with the
// message held (in progress), and is no delivery at all.
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
			MaxDeliver:    -1, // attempts are counted by deliverStream
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
		a.deliverStream(ctx, name, durable, t, msg)
	})
}

// maxHeldWait caps the wait between tries of a stream message whose
// function is unavailable or not found, while the message is held.
const maxHeldWait = 5 * time.Second

// waitable reports whether err means the function did not run and may
// later: throttled, out of capacity, unavailable (a version shutting down,
// a secret it lists removed) or not found (a function being replaced or
// removed, whose trigger then stops).
func waitable(err error) bool {
	switch gust.ErrorCode(err) {
	case gust.ETHROTTLED, gust.ECAPACITY, gust.EUNAVAILABLE, gust.ENOTFOUND:
		return true
	}
	return false
}

func (a *Async) deliverStream(ctx context.Context, name, durable string, t gust.Trigger, msg jetstream.Msg) {
	defer a.survive("stream consumer " + durable)
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return
	}
	log := a.log.With("function", name, "stream", meta.Stream, "seq", meta.Sequence.Stream)
	hbKey := handbackKey(meta.Stream, durable, meta.Sequence.Stream)
	handbacks := 0
	if meta.NumDelivered > 1 {
		handbacks = a.handbacks(hbKey)
	}
	attempt := max(int(meta.NumDelivered)-handbacks, 1)
	settled := func() {
		// A redelivery may have a count though none was read: a node
		// that missed its AckWait holding the message may write its
		// return while this one runs it. A first delivery has none.
		if meta.NumDelivered > 1 {
			a.forgetHandbacks(hbKey)
		}
	}
	id := a.cfg.NewID()
	// The id is the message's place in its stream, the same on every
	// delivery, so a function can tell a redelivery from a new message.
	ceID := fmt.Sprintf("%s-%d", meta.Stream, meta.Sequence.Stream)
	h := msgEventHeader(CETypeStream, "/gust/stream/"+meta.Stream, ceID, msg.Subject(), meta.Timestamp, msg.Headers())
	h.Set(HeaderInvocationID, id)
	h.Set(HeaderAttempt, strconv.Itoa(attempt))
	req := &gust.Request{ID: id, Method: http.MethodPost, Path: "/", Header: h, Body: msg.Data(), Trigger: "stream"}
	deadLetter := func(cause error, attempts int) {
		ev := &Event{
			ID: id, Function: name, Method: req.Method, Path: req.Path, Header: h,
			Trigger: "stream", AcceptedAt: meta.Timestamp, Body: msg.Data(),
		}
		dctx, cancel := opCtx()
		defer cancel()
		dead := Dead{Error: gust.ErrorMessage(cause), Code: gust.ErrorCode(cause), Attempts: attempts, DeadAt: a.now()}
		if derr := a.publishDead(dctx, ev, dead, fmt.Sprintf("dead:%s:%s", name, ceID)); derr != nil {
			log.Error("stream trigger: dead-lettering failed; message kept", "err", derr)
			_ = msg.NakWithDelay(a.jitter(a.cfg.ThrottleDelay))
			return
		}
		log.Info("stream message dead-lettered", "attempts", attempts, "deliveries", meta.NumDelivered, "err", cause)
		_ = msg.TermWithReason("dead-lettered by gust")
		settled()
	}
	if attempt > t.MaxDeliveries {
		// Deliveries that ended with no word from their node (it died, or
		// missed its AckWait), or a maxDeliveries lowered since, used up
		// the attempts: dead-letter it rather than try again or drop it.
		deadLetter(gust.Errorf(gust.EINTERNAL, "%d deliveries made, maxDeliveries is %d: the last ended with no outcome (its node stopped or went silent mid-invocation)", attempt-1, t.MaxDeliveries), attempt-1)
		return
	}

	var v *gust.Version
	stop := a.heartbeat(msg)
	wait := a.cfg.ThrottleDelay
	// Unavailable or not found may be this node's alone (its runtime is
	// not installed, it lacks the master key): after HoldUnavailable the
	// message goes back, untried, so that another node can take it.
	var heldSince time.Time
	handBack := false
	for warned := false; ; {
		v, err = a.cfg.Invoker.Resolve(ctx, name, "")
		if err == nil {
			_, err = a.invokeRecovered(name, id, func() (*gust.Response, error) { return a.cfg.Invoker.Invoke(ctx, v, req) })
		}
		// Waiting for the function is not a delivery: wait here, keeping
		// the message ours, instead of spending one of its attempts.
		if ctx.Err() != nil || !waitable(err) {
			break
		}
		if code := gust.ErrorCode(err); code == gust.EUNAVAILABLE || code == gust.ENOTFOUND {
			if !warned {
				log.Warn("stream trigger: function not available; holding the message until it is", "err", err)
				warned = true
				heldSince = a.now()
			}
			if a.now().Sub(heldSince) >= a.cfg.HoldUnavailable {
				handBack = true
				break
			}
			wait = min(wait*2, maxHeldWait)
		}
		if !sleep(ctx, a.jitter(wait)) {
			break
		}
	}
	stop()
	switch {
	case err == nil:
		_ = msg.Ack()
		settled()
	case ctx.Err() != nil || handBack:
		// Shutting down, the trigger being replaced, or held long enough
		// on a node that cannot run it: hand it back, counted as a return
		// so that it spends no attempt.
		a.recordHandback(hbKey, handbacks+1)
		_ = msg.NakWithDelay(a.cfg.ThrottleDelay)
	case attempt >= t.MaxDeliveries:
		deadLetter(err, attempt)
	default:
		backoff := gust.DefaultRetryBackoff
		if v != nil {
			backoff = v.Spec.WithDefaults().RetryBackoff.D()
		}
		_ = msg.NakWithDelay(a.backoff(backoff, attempt))
	}
}

// handbackKey is the key, in the handbacks bucket, of how many times the
// message seq of stream was handed back to consumer durable untried.
func handbackKey(stream, durable string, seq uint64) string {
	return stream + "." + durable + "." + strconv.FormatUint(seq, 10)
}

// handbacksSubject is the subject of every handback key of a consumer, in
// the bucket's stream.
func handbacksSubject(stream, durable string) string {
	return "$KV." + BucketHandbacks + "." + stream + "." + durable + ".>"
}

// handbacks returns how many times a message was handed back untried; 0
// if unknown (so an unreadable count costs at most attempts, never the
// message).
func (a *Async) handbacks(key string) int {
	ctx, cancel := opCtx()
	defer cancel()
	e, err := a.handbacksKV.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			a.log.Warn("stream trigger: reading a message's returns", "key", key, "err", err)
		}
		return 0
	}
	n, _ := strconv.Atoi(string(e.Value()))
	return n
}

// recordHandback stores a message's count of returns. Each return
// rewrites it, so it expires cfg.HandbackTTL (the bucket's TTL) after the
// last one.
func (a *Async) recordHandback(key string, n int) {
	ctx, cancel := opCtx()
	defer cancel()
	if _, err := a.handbacksKV.Put(ctx, key, []byte(strconv.Itoa(n))); err != nil {
		a.log.Warn("stream trigger: recording a message handed back; its next delivery counts as an attempt", "key", key, "err", err)
	}
}

// forgetHandbacks removes a settled message's count, leaving no delete
// marker behind (a purge of the subject in the bucket's stream).
func (a *Async) forgetHandbacks(key string) {
	// One request (the purge marker ages out with the bucket's TTL), not
	// the stream lookup and purge purgeState makes: this runs on every
	// settle of a redelivered message.
	ctx, cancel := opCtx()
	defer cancel()
	if err := a.handbacksKV.Purge(ctx, key); err != nil {
		a.log.Debug("forgetting handbacks", "key", key, "err", err)
	}
}

// purgeState removes subject's messages from bucket's stream.
func (a *Async) purgeState(bucket, subject string) {
	ctx, cancel := opCtx()
	defer cancel()
	s, err := a.js.Stream(ctx, "KV_"+bucket)
	if err == nil {
		err = s.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
	if err != nil {
		a.log.Debug("purging trigger state", "subject", subject, "err", err)
	}
}
