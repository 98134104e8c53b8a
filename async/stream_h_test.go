package async

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
)

// faulty wraps an Invoker and fails or panics on cue, as a version shutting
// down, a function being replaced or a bug in a driver would; a real pool
// cannot be made to do these on cue.
type faulty struct {
	Invoker
	mu    sync.Mutex
	mode  string // "", "unavailable" (Invoke), "notfound" (Resolve), "panic" (Invoke)
	calls int    // calls refused or panicked
}

func (f *faulty) set(mode string) {
	f.mu.Lock()
	f.mode = mode
	f.mu.Unlock()
}

func (f *faulty) refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *faulty) take(mode string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mode != mode {
		return false
	}
	f.calls++
	return true
}

func (f *faulty) Resolve(ctx context.Context, name, ref string) (*gust.Version, error) {
	if f.take("notfound") {
		return nil, gust.Errorf(gust.ENOTFOUND, "function %s is being replaced (test)", name)
	}
	return f.Invoker.Resolve(ctx, name, ref)
}

func (f *faulty) Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error) {
	if f.take("unavailable") {
		return nil, gust.Errorf(gust.EUNAVAILABLE, "version %d is shutting down (test)", v.Number)
	}
	if f.take("panic") {
		var resp *gust.Response
		_ = resp.Header.Get("X") // a nil pointer, as a driver's response mapping had
	}
	return f.Invoker.Invoke(ctx, v, req)
}

func newFaultyHarness(t *testing.T, mod func(*Config)) (*harness, *faulty) {
	f := &faulty{}
	h := newHarnessWrapped(t, "", mod, func(inv Invoker) Invoker { f.Invoker = inv; return f })
	return h, f
}

func ordersStream(t *testing.T, h *harness) jetstream.JetStream {
	t.Helper()
	js := h.brk.JetStream()
	if _, err := broker.EnsureStream(context.Background(), js, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	return js
}

func settledConsumer(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "every message settled", func() bool {
		cons, err := js.Consumer(ctx, "ORDERS", durableName(name, 0))
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// A stream message whose function is unavailable, or not found for a
// while, outlasts MaxDeliveries without spending them: it is held until the
// function is back and then runs. It used to be nak'd per try, and after
// MaxDeliveries JetStream stopped delivering it: never run, never
// dead-lettered.
func TestStreamUnavailableKeepsMessage(t *testing.T) {
	h, f := newFaultyHarness(t, nil)
	js := ordersStream(t, h)
	h.deploy("orders", gust.Spec{
		RetryBackoff: gust.Duration(20 * time.Millisecond),
		Triggers:     []gust.Trigger{{Stream: "ORDERS", Filter: "orders.>", MaxDeliveries: 3}},
	})
	ctx := context.Background()
	for i, mode := range []string{"unavailable", "notfound"} {
		f.set(mode)
		before := f.refused()
		if _, err := js.Publish(ctx, "orders.new", []byte("ok")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "more refusals than MaxDeliveries ("+mode+")", func() bool { return f.refused()-before > 4 })
		f.set("")
		eventually(t, "the message to run ("+mode+")", func() bool { return h.cnt.triggered("stream") == i+1 })
		settledConsumer(t, js, "orders")
	}
	if dl, err := h.a.DeadLetters(ctx, "orders"); err != nil || len(dl) != 0 {
		t.Fatalf("dead letters %v, %v; want none", dl, err)
	}
	if hd := h.cnt.lastHeader("stream"); hd.Get(HeaderAttempt) != "1" {
		t.Fatalf("held message ran as attempt %q, want 1", hd.Get(HeaderAttempt))
	}
}

// A node shutting down hands its held message back without spending an
// attempt: the next node still runs it MaxDeliveries times before the
// dead letter.
func TestStreamShutdownSpendsNoAttempt(t *testing.T) {
	h, f := newFaultyHarness(t, nil)
	js := ordersStream(t, h)
	h.deploy("orders", gust.Spec{
		RetryBackoff: gust.Duration(20 * time.Millisecond),
		Triggers:     []gust.Trigger{{Stream: "ORDERS", Filter: "orders.>", MaxDeliveries: 2}},
	})
	f.set("unavailable")
	ctx := context.Background()
	if _, err := js.Publish(ctx, "orders.new", []byte("fail:always")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first delivery", func() bool { return f.refused() >= 1 })
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := h.a.Close(cctx); err != nil {
		t.Fatal(err)
	}

	f.set("")
	cfg := testConfig(nil)
	cfg.Invoker, cfg.Registry, cfg.Secrets = f, h.reg, h.sec
	a2, err := New(cctx, js, h.brk.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.extra = append(h.extra, a2)
	eventually(t, "the dead letter", func() bool {
		dl, err := a2.DeadLetters(ctx, "orders")
		return err == nil && len(dl) == 1
	})
	dl, _ := a2.DeadLetters(ctx, "orders")
	if dl[0].Attempts != 2 || dl[0].Code != gust.EFUNCTION {
		t.Fatalf("dead letter %+v, want 2 attempts of a function error", dl[0])
	}
	if n := h.cnt.triggered("stream"); n != 2 {
		t.Fatalf("the function ran %d times, want 2 (MaxDeliveries; the shutdown is no attempt)", n)
	}
	settledConsumer(t, js, "orders")
	// A settled message's count of returns is gone.
	if _, err := h.a.handbacksKV.Get(ctx, handbackKey("ORDERS", durableName("orders", 0), 1)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("handback count of a settled message: %v, want not found", err)
	}
}

// A panic inside an invocation on a background goroutine (async worker,
// stream or subject trigger) fails that invocation with EINTERNAL and
// leaves the node running; it used to kill the process.
func TestBackgroundInvocationPanicRecovered(t *testing.T) {
	h, f := newFaultyHarness(t, nil)
	js := ordersStream(t, h)
	zero := 0
	h.deploy("boom", gust.Spec{Retries: &zero, Triggers: []gust.Trigger{{Subject: "jobs.boom"}}})
	h.deploy("orders", gust.Spec{
		RetryBackoff: gust.Duration(20 * time.Millisecond),
		Triggers:     []gust.Trigger{{Stream: "ORDERS", Filter: "orders.>", MaxDeliveries: 2}},
	})
	nc := h.brk.Conn()
	eventually(t, "the subscription", func() bool {
		m, err := nc.Request("jobs.boom", []byte("ping"), 2*time.Second)
		return err == nil && string(m.Data) == "ping"
	})
	f.set("panic")

	// Async: the attempt fails EINTERNAL, and with no retries is dead-lettered.
	id := h.accept("/async/boom", []byte("x"), nil)
	s := h.waitStatus(id, StatusDeadLettered)
	if s.Code != gust.EINTERNAL || s.Attempts != 1 {
		t.Fatalf("status %+v, want one attempt failed internal", s)
	}

	// Stream: each delivery fails EINTERNAL; the last is dead-lettered.
	ctx := context.Background()
	if _, err := js.Publish(ctx, "orders.new", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stream dead letter", func() bool {
		dl, err := h.a.DeadLetters(ctx, "orders")
		return err == nil && len(dl) == 1
	})
	dl, _ := h.a.DeadLetters(ctx, "orders")
	if dl[0].Code != gust.EINTERNAL || dl[0].Attempts != 2 {
		t.Fatalf("dead letter %+v", dl[0])
	}

	// Subject: the message is dropped (at most once), the next one runs.
	if _, err := nc.Request("jobs.boom", []byte("lost"), 500*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("request to a panicking function: %v, want a timeout", err)
	}
	f.set("")
	if m, err := nc.Request("jobs.boom", []byte("after"), 5*time.Second); err != nil || string(m.Data) != "after" {
		t.Fatalf("request after the panic: %v", err)
	}
}

// Headers of a NATS message reach the function without those no sender may
// set (X-Gust-Auth-*, which functions trust as a route's auth), and a
// message that is a CloudEvent keeps its own attributes.
func TestSubjectMessageHeaders(t *testing.T) {
	h := newHarness(t, "", nil)
	nc := h.brk.Conn()
	h.deploy("hdr", gust.Spec{Triggers: []gust.Trigger{{Subject: "jobs.hdr"}}})
	eventually(t, "the subscription", func() bool {
		m, err := nc.Request("jobs.hdr", []byte("ping"), 2*time.Second)
		return err == nil && string(m.Data) == "ping"
	})
	send := func(hdr map[string]string, body string) http.Header {
		t.Helper()
		m := nats.NewMsg("jobs.hdr")
		for k, v := range hdr {
			m.Header[k] = []string{v} // as sent, not canonicalized
		}
		m.Data = []byte(body)
		r, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil || string(r.Data) != body {
			t.Fatalf("request: %v", err)
		}
		return h.cnt.lastHeader("nats")
	}

	got := send(map[string]string{
		"X-Gust-Auth-Subject": "admin", "x-gust-auth-claims": `{"role":"admin"}`, "X-GUST-AUTH-ROUTE": "/",
		"Authorization-Gust": "x", "Connection": "close", "X-Gust-Attempt": "9", "Gust-Event": "{}",
		"ce-id": "stray", "X-Custom": "kept", "content-type": "text/plain",
	}, "plain")
	for k := range got {
		if strings.HasPrefix(strings.ToLower(k), "x-gust-auth-") {
			t.Fatalf("%s reached the function: %v", k, got)
		}
	}
	if got.Get("Authorization-Gust") != "" || got.Get("Connection") != "" || got.Get(HeaderAttempt) != "" || got.Get("Gust-Event") != "" {
		t.Fatalf("reserved headers reached the function: %v", got)
	}
	if got.Get("X-Custom") != "kept" || got.Get("Content-Type") != "text/plain" || got.Get("Ce-Type") != CETypeNATS || got.Get("Ce-Id") == "stray" {
		t.Fatalf("plain message headers: %v", got)
	}

	// Binary mode: the sender's attributes stand, extensions included.
	got = send(map[string]string{
		"ce-specversion": "1.0", "ce-id": "evt-1", "ce-source": "/orders", "ce-type": "com.example.order.created",
		"ce-subject": "order-7", "ce-time": "2026-11-27T01:00:00Z", "ce-partitionkey": "p1", "content-type": "application/json",
		"X-Gust-Auth-Subject": "admin",
	}, `{"order":7}`)
	want := map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": "evt-1", "Ce-Source": "/orders", "Ce-Type": "com.example.order.created",
		"Ce-Subject": "order-7", "Ce-Time": "2026-11-27T01:00:00Z", "Ce-Partitionkey": "p1", "Content-Type": "application/json",
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Fatalf("binary CloudEvent: %s = %q, want %q (headers %v)", k, got.Get(k), v, got)
		}
	}
	if got.Get("X-Gust-Auth-Subject") != "" {
		t.Fatalf("X-Gust-Auth-Subject reached the function: %v", got)
	}

	// Binary mode lacking required attributes: gust fills only those.
	got = send(map[string]string{"ce-specversion": "1.0", "ce-type": "com.example.ping"}, "p")
	if got.Get("Ce-Type") != "com.example.ping" || got.Get("Ce-Id") == "" || got.Get("Ce-Source") != "/gust/nats/hdr" || got.Get("Ce-Subject") != "" {
		t.Fatalf("partial binary CloudEvent: %v", got)
	}

	// Structured mode: the event is the body, passed through as made.
	ev := `{"specversion":"1.0","id":"s-1","source":"/x","type":"com.example.s","data":{"a":1}}`
	got = send(map[string]string{"content-type": "application/cloudevents+json; charset=utf-8"}, ev)
	if got.Get("Content-Type") != "application/cloudevents+json; charset=utf-8" {
		t.Fatalf("structured CloudEvent content type: %v", got)
	}
	for k := range got {
		if isCEHeader(k) {
			t.Fatalf("structured CloudEvent got attribute header %s: %v", k, got)
		}
	}
}
