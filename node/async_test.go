package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/trace"
	"github.com/gustfaas/gust/trace/tracetest"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// The async path through a whole node: accepted (202 with an id) only once
// stored, run by a worker, its result readable at /v1/invocations/ID.
func TestAsyncThroughTheNode(t *testing.T) {
	n, c := testNode(t, "", nil)
	deploy(t, c, "hello", gust.Spec{}, wasmtest.Code(t, wasmtest.Hello(t)))
	r := do(t, "POST", n.URL()+"/async/hello?name=later", []byte("x"))
	if r.status != http.StatusAccepted {
		t.Fatalf("async accept = %d %s", r.status, r.body)
	}
	id := r.header.Get("X-Gust-Invocation-Id")
	if id == "" {
		t.Fatal("no invocation id")
	}
	wantError(t, do(t, "POST", n.URL()+"/async/nothere", nil), 404, gust.ENOTFOUND)
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.Invocation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == "succeeded" {
			b, _ := json.Marshal(st)
			if !json.Valid(b) {
				t.Fatal("bad status JSON")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("async invocation still %q", st.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An async invocation traced end to end: the accept has a server span in
// the caller's trace, the stored event carries its context, and the
// worker's queue wait, cold start and execution continue that trace as
// children of the accept; the function's traceparent names its execution
// span and the caller's tracestate goes with it.
func TestAsyncTraced(t *testing.T) {
	rcv := tracetest.New(t)
	n, c := testNode(t, "", func(cfg *Config) { cfg.OTLPEndpoint = rcv.URL() })
	deploy(t, c, "traced", gust.Spec{}, wasmtest.Code(t, wasmtest.GoGuest(t, traceGuest)))

	req, err := http.NewRequest("POST", n.URL()+"/async/traced", bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Traceparent", callerTP)
	req.Header.Set("Tracestate", "vendor=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Gust-Invocation-Id")
	if resp.StatusCode != http.StatusAccepted || id == "" {
		t.Fatalf("accept = %d, id %q", resp.StatusCode, id)
	}
	st := waitInvocation(t, c, id)
	if st.Status != "succeeded" {
		t.Fatalf("async invocation ended %s: %s", st.Status, st.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Tracer().ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	spans := spansOf(rcv.Spans(), id)
	acc, wait, cold, exec := spans["POST "+"/async/{name}"], spans[trace.SpanQueueWait], spans[trace.SpanColdStart], spans[trace.SpanExecution]
	if acc == nil || wait == nil || cold == nil || exec == nil {
		t.Fatalf("spans of the async invocation: %v, want accept, queue wait, cold start, execution", keys(spans))
	}
	for _, s := range spans {
		if tracetest.TraceID(s) != callerTrace {
			t.Errorf("span %q is in trace %s, want the caller's %s", s.Name, tracetest.TraceID(s), callerTrace)
		}
	}
	if tracetest.ParentID(acc) != callerSpan || acc.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("accept span: parent %s kind %v, want %s, SERVER", tracetest.ParentID(acc), acc.Kind, callerSpan)
	}
	for k, want := range map[string]string{
		"http.route": "/async/{name}", "http.response.status_code": "202", "faas.name": "traced", "faas.version": "1",
	} {
		if got, _ := tracetest.Attr(acc, k); got != want {
			t.Errorf("accept span %s = %q, want %q", k, got, want)
		}
	}
	for _, s := range []*tracepb.Span{wait, cold, exec} {
		if tracetest.ParentID(s) != tracetest.SpanID(acc) {
			t.Errorf("span %q: parent %s, want the accept span %s", s.Name, tracetest.ParentID(s), tracetest.SpanID(acc))
		}
	}
	if wait.StartTimeUnixNano < acc.StartTimeUnixNano || wait.EndTimeUnixNano > exec.StartTimeUnixNano {
		t.Error("the queue wait must start within the accept and end before the execution")
	}
	if got, _ := tracetest.Attr(exec, "faas.trigger"); got != "pubsub" {
		t.Errorf("execution faas.trigger = %q", got)
	}
	lines := strings.Split(st.Response.Body, "\n")
	if want := "00-" + callerTrace + "-" + tracetest.SpanID(exec) + "-01"; len(lines) < 2 || lines[0] != want || lines[1] != "vendor=1" {
		t.Errorf("function got %q, want traceparent %s and the caller's tracestate", st.Response.Body, want)
	}
}

// Without tracing the caller's traceparent reaches an async function
// unchanged, as it does a synchronous one.
func TestAsyncNoTracingPassesTraceparentThrough(t *testing.T) {
	n, c := testNode(t, "", nil)
	deploy(t, c, "traced", gust.Spec{}, wasmtest.Code(t, wasmtest.GoGuest(t, traceGuest)))
	req, err := http.NewRequest("POST", n.URL()+"/async/traced", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Traceparent", callerTP)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("accept = %d", resp.StatusCode)
	}
	st := waitInvocation(t, c, resp.Header.Get("X-Gust-Invocation-Id"))
	if st.Status != "succeeded" {
		t.Fatalf("async invocation ended %s: %s", st.Status, st.Error)
	}
	if st.Response.Body != callerTP+"\n\n" {
		t.Errorf("function got %q, want the caller's traceparent unchanged", st.Response.Body)
	}
}
