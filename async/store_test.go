package async

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/trace"
	"github.com/gustfaas/gust/trace/tracetest"
)

// An accept is one durable write: the event, under its function's subject,
// its invocation id ending in the event's stream sequence. Until a worker
// takes it there is no status record,
// and the status is read from the stream: queued, with what the accept
// resolved. Such an invocation can be canceled (the cancel creates the
// record, and the worker then drops the event unrun).
func TestAcceptIsOneWrite(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.Workers = 1 })
	ctx := context.Background()
	h.deploy("echo", gust.Spec{})
	gate := make(chan struct{})
	h.cnt.mu.Lock()
	h.cnt.gate = gate
	h.cnt.mu.Unlock()
	opened := false
	open := func() {
		if !opened {
			opened = true
			close(gate)
		}
	}
	defer open()

	// The one worker is held in the first invocation; the rest wait in
	// the stream, untouched.
	first := h.accept("/async/echo", []byte("first"), nil)
	eventually(t, "the first to start", func() bool { return h.cnt.count(first) == 1 })
	var ids []string
	for range 5 {
		ids = append(ids, h.accept("/async/echo@1/p?q=1", []byte("later"), nil))
	}
	if n := statusRecords(t, h.a); n != 1 {
		t.Fatalf("%d status records after 6 accepts with one running, want 1 (the running one)", n)
	}
	for _, id := range ids {
		stored, seq, ok := splitSeqID(id)
		if !ok {
			t.Fatalf("id %s does not end in a stream sequence", id)
		}
		m, err := h.a.stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("event %s is not at sequence %d: %v", id, seq, err)
		}
		if m.Subject != SubjectAsync+"echo" {
			t.Fatalf("event %s is under subject %s, want the function's", id, m.Subject)
		}
		if len(m.Header) != 0 {
			t.Fatalf("event %s has NATS headers %v; its metadata belongs in the data", id, m.Header)
		}
		if ev, err := decodeEvent(m.Header, m.Data); err != nil || string(ev.Body) != "later" || ev.ID != stored || !ev.SeqSuffix {
			t.Fatalf("event %s decodes to %+v, %v", id, ev, err)
		}
		if _, err := h.a.status.Get(ctx, statusKey(id)); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("queued %s has a status record: %v", id, err)
		}
		s, err := h.c.Invocation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != StatusQueued || s.Function != "echo" || s.Ref != "1" || s.Version != 1 || s.Trigger != "async" || s.AcceptedAt.IsZero() {
			t.Fatalf("status of a queued event = %+v", s)
		}
	}

	canceled := ids[0]
	if s, err := h.c.CancelInvocation(ctx, canceled); err != nil || s.Status != StatusCanceled || s.Function != "echo" {
		t.Fatalf("cancel of a queued event = %+v, %v", s, err)
	}
	if _, err := h.c.CancelInvocation(ctx, canceled); gust.ErrorCode(err) != gust.ECONFLICT {
		t.Fatalf("second cancel: %v", err)
	}
	open()
	for _, id := range append([]string{first}, ids[1:]...) {
		h.waitStatus(id, StatusSucceeded)
	}
	eventually(t, "the queue to empty", func() bool {
		ci, err := h.a.js.Consumer(ctx, StreamAsync, ConsumerWorkers)
		if err != nil {
			return false
		}
		info, err := ci.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if n := h.cnt.count(canceled); n != 0 {
		t.Fatalf("the canceled invocation ran %d times", n)
	}
	if s, err := h.c.Invocation(ctx, canceled); err != nil || s.Status != StatusCanceled {
		t.Fatalf("canceled status after = %+v, %v", s, err)
	}
}

func statusRecords(t *testing.T, a *Async) uint64 {
	t.Helper()
	st, err := a.status.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Values()
}

// Many concurrent accepts share the publisher: each is answered 202 only
// once its own event is stored, and every one runs once.
func TestConcurrentAcceptsAllStored(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.PublishWindow = 4 })
	h.deploy("echo", gust.Spec{})
	const n = 64
	ids := make(chan string, n)
	errs := make(chan error, n)
	for range 8 {
		go func() {
			for range n / 8 {
				r := h.post("/async/echo", []byte("x"), nil)
				if r.status != http.StatusAccepted {
					errs <- errors.New(string(r.body))
					continue
				}
				ids <- r.header.Get(HeaderInvocationID)
			}
		}()
	}
	seen := map[string]bool{}
	for range n {
		select {
		case id := <-ids:
			seen[id] = true
		case err := <-errs:
			t.Fatalf("accept failed: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("accepts did not finish")
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct ids of %d accepts", len(seen), n)
	}
	for id := range seen {
		h.waitStatus(id, StatusSucceeded)
		if c := h.cnt.count(id); c != 1 {
			t.Fatalf("%s ran %d times", id, c)
		}
	}
}

// A cron tick traced: the tick's span is the root of its invocation's
// trace, the event carries it as the CloudEvents traceparent extension,
// and the queue wait and the execution are its children.
func TestCronTraced(t *testing.T) {
	rcv := tracetest.New(t)
	tr, err := trace.New(trace.Config{Endpoint: rcv.URL(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	h := newHarness(t, "", func(c *Config) { c.Tracer = tr })
	h.deploy("tick", gust.Spec{Triggers: []gust.Trigger{{Cron: "@every 1s"}}})
	eventually(t, "a tick", func() bool { return h.cnt.triggered("cron") >= 1 })
	hd := h.cnt.lastHeader("cron")
	id := hd.Get(HeaderInvocationID)
	h.waitStatus(id, StatusSucceeded)
	h.deploy("tick", gust.Spec{})
	eventually(t, "the cron runner to stop", func() bool { return !h.running("tick") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	spans := map[string]string{} // name -> span id
	traces := map[string]string{}
	parents := map[string]string{}
	for _, s := range rcv.Spans() {
		if v, _ := tracetest.Attr(s, "faas.invocation_id"); v == id {
			spans[s.Name], traces[s.Name], parents[s.Name] = tracetest.SpanID(s), tracetest.TraceID(s), tracetest.ParentID(s)
		}
	}
	tick := spans[trace.SpanCronTick]
	if tick == "" || spans[trace.SpanQueueWait] == "" || spans[trace.SpanExecution] == "" {
		t.Fatalf("spans of the tick's invocation: %v, want cron tick, queue wait, execution", spans)
	}
	if parents[trace.SpanCronTick] != "" {
		t.Errorf("the cron tick span has parent %s, want a root", parents[trace.SpanCronTick])
	}
	for _, name := range []string{trace.SpanQueueWait, trace.SpanExecution} {
		if parents[name] != tick || traces[name] != traces[trace.SpanCronTick] {
			t.Errorf("span %q: parent %s in trace %s, want the tick %s in %s", name, parents[name], traces[name], tick, traces[trace.SpanCronTick])
		}
	}
	if want := "00-" + traces[trace.SpanCronTick] + "-" + tick + "-01"; hd.Get("Ce-Traceparent") != want {
		t.Errorf("event's ce-traceparent = %q, want %q", hd.Get("Ce-Traceparent"), want)
	}
}

// A webhook delivery traced: its server span ("POST /hooks/{path}") sits
// in the sender's trace, the event carries it as the CloudEvents
// traceparent extension, and the queue wait and the execution are its
// children.
func TestWebhookTraced(t *testing.T) {
	rcv := tracetest.New(t)
	tr, err := trace.New(trace.Config{Endpoint: rcv.URL(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	h := newHarness(t, "", func(c *Config) { c.Tracer = tr })
	key := []byte("s3cret-key")
	if err := h.sec.Set(context.Background(), "HOOK_KEY", key); err != nil {
		t.Fatal(err)
	}
	h.deploy("hooked", gust.Spec{Triggers: []gust.Trigger{
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/plain", Secret: "HOOK_KEY", Scheme: gust.WebhookHMACSHA256}},
	}})
	h.waitHook("/hooks/plain", true)
	const senderTrace, senderSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body := []byte(`{"n":1}`)
	id := h.accept("/hooks/plain", body, map[string]string{
		HeaderSignature: SignHMACSHA256(key, body),
		"Traceparent":   "00-" + senderTrace + "-" + senderSpan + "-01",
	})
	h.waitStatus(id, StatusSucceeded)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	byName := map[string][3]string{} // name -> span, parent, trace
	for _, s := range rcv.Spans() {
		if v, _ := tracetest.Attr(s, "faas.invocation_id"); v == id {
			byName[s.Name] = [3]string{tracetest.SpanID(s), tracetest.ParentID(s), tracetest.TraceID(s)}
		}
	}
	acc := byName["POST "+WebhookRoute]
	if acc[0] == "" || acc[1] != senderSpan || acc[2] != senderTrace {
		t.Fatalf("delivery span %v (all: %v), want a child of the sender's span", acc, byName)
	}
	for _, name := range []string{trace.SpanQueueWait, trace.SpanExecution} {
		if s := byName[name]; s[1] != acc[0] || s[2] != senderTrace {
			t.Errorf("span %q = %v, want a child of the delivery span %s", name, s, acc[0])
		}
	}
	if want := "00-" + senderTrace + "-" + acc[0] + "-01"; h.cnt.lastHeader("webhook").Get("Ce-Traceparent") != want {
		t.Errorf("event's ce-traceparent = %q, want %q", h.cnt.lastHeader("webhook").Get("Ce-Traceparent"), want)
	}
}

// A worker whose view of the status record went stale (a write of its own
// whose reply was lost had in fact been applied) still records the end it
// reached, over the newer revision; an end someone else recorded stands.
func TestFinishOverConflict(t *testing.T) {
	h := newHarness(t, "", nil)
	ctx := context.Background()
	running := &Status{ID: "conflict-1", Function: "echo", Status: StatusRunning, Attempts: 1, AcceptedAt: time.Now()}
	rev, err := h.a.updateStatus(ctx, running, 0)
	if err != nil {
		t.Fatal(err)
	}
	running.Attempts = 2 // the write this worker never heard back from
	if _, err := h.a.updateStatus(ctx, running, rev); err != nil {
		t.Fatal(err)
	}
	done := *running
	done.Status = StatusSucceeded
	if _, err := h.a.updateStatus(ctx, &done, rev); gust.ErrorCode(err) != gust.ECONFLICT {
		t.Fatalf("write on the stale revision: %v, want a conflict", err)
	}
	recorded, err := h.a.finishOverConflict(ctx, &done)
	if err != nil || !recorded {
		t.Fatalf("finishOverConflict = %v, %v", recorded, err)
	}
	got, _, err := h.a.getStatus(ctx, "conflict-1")
	if err != nil || got.Status != StatusSucceeded {
		t.Fatalf("status after the conflict: %+v, %v", got, err)
	}

	// Already final (say canceled): that end stands.
	other := done
	other.Status = StatusFailed
	if recorded, err := h.a.finishOverConflict(ctx, &other); err != nil || recorded {
		t.Fatalf("over a final record: %v, %v", recorded, err)
	}
	if got, _, _ := h.a.getStatus(ctx, "conflict-1"); got.Status != StatusSucceeded {
		t.Fatalf("a final record was overwritten: %+v", got)
	}
}
