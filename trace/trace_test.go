package trace_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/trace"
	"github.com/gustfaas/gust/trace/tracetest"
)

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
	callerTP    = "00-" + callerTrace + "-" + callerSpan + "-01"
)

func TestEndpointURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"},
		{"http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"},
		{"https://otel.example:443/custom/traces", "https://otel.example:443/custom/traces"},
	} {
		got, err := trace.EndpointURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("EndpointURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"127.0.0.1:4318", "ftp://x", "http://", "::"} {
		if _, err := trace.EndpointURL(bad); gust.ErrorCode(err) != gust.EINVALID {
			t.Errorf("EndpointURL(%q) err = %v, want EINVALID", bad, err)
		}
		if _, err := trace.New(trace.Config{Endpoint: bad}); gust.ErrorCode(err) != gust.EINVALID {
			t.Errorf("New(%q) err = %v, want EINVALID", bad, err)
		}
	}
}

// Off, a tracer hands back what it was given, touches no header and
// allocates nothing: the hot path pays a nil check.
func TestDisabledIsFree(t *testing.T) {
	for name, tr := range map[string]*trace.Tracer{"nil": nil, "no endpoint": mustNew(t, trace.Config{})} {
		t.Run(name, func(t *testing.T) {
			if tr.Enabled() {
				t.Fatal("enabled without an endpoint")
			}
			req := &gust.Request{ID: "x", Header: http.Header{"Traceparent": {callerTP}}}
			inv := &gust.Invocation{ID: "x", Start: time.Now(), Cold: true}
			ctx := context.Background()
			allocs := testing.AllocsPerRun(100, func() {
				c, r, span := tr.Acquired(ctx, req, inv, inv.Start, nil)
				if r != req || c != ctx {
					t.Fatal("disabled tracer changed the request or context")
				}
				span.End(inv.Start, nil, nil)
			})
			if allocs != 0 {
				t.Errorf("disabled tracer allocates %v times per call", allocs)
			}
			if got := req.Header.Get("traceparent"); got != callerTP {
				t.Errorf("traceparent = %q, want the caller's %q passed through", got, callerTP)
			}
			hr := httptest.NewRequest("GET", "/fn/x", nil)
			c, s := tr.StartServer(hr, "/fn/{name}")
			if c != hr.Context() {
				t.Error("disabled StartServer changed the context")
			}
			s.End(200, "x", 1, "id")
			if err := tr.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tr.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mustNew(t *testing.T, cfg trace.Config) *trace.Tracer {
	t.Helper()
	tr, err := trace.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func flushed(t *testing.T, tr *trace.Tracer, rcv *tracetest.Receiver) []*tracepb.Span {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, bad := rcv.Posts(); bad != 0 {
		t.Fatalf("receiver refused %d malformed exports", bad)
	}
	return rcv.Spans()
}

func one(t *testing.T, spans []*tracepb.Span, name string) *tracepb.Span {
	t.Helper()
	got := tracetest.ByName(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %q, want 1; all: %v", len(got), name, names(spans))
	}
	return got[0]
}

func names(spans []*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func wantAttr(t *testing.T, s *tracepb.Span, key, want string) {
	t.Helper()
	if got, ok := tracetest.Attr(s, key); !ok || got != want {
		t.Errorf("span %q: %s = %q (set %v), want %q", s.Name, key, got, ok, want)
	}
}

// A cold call that waited: the gateway span continues the caller's trace,
// the invoker's spans hang below it with the times of the invocation
// record, and the function is handed a traceparent naming the execution
// span, in a copy of the request.
func TestSpansOfAnInvocation(t *testing.T) {
	rcv := tracetest.New(t)
	tr := mustNew(t, trace.Config{Endpoint: rcv.URL(), ServiceVersion: "9.9"})
	defer tr.Shutdown(context.Background())

	hr := httptest.NewRequest("POST", "/fn/hello/x?y=1", nil)
	hr.Header.Set("Traceparent", callerTP)
	hr.Header.Set("Tracestate", "vendor=abc")
	ctx, server := tr.StartServer(hr, "/fn/{name}")

	start := time.Unix(1_700_000_000, 0)
	inv := &gust.Invocation{ID: "inv1", Function: "hello", Version: 3, Trigger: "http",
		Start: start, QueueWait: 5 * time.Millisecond, Cold: true}
	acquired := start.Add(20 * time.Millisecond)
	req := &gust.Request{ID: "inv1", Header: http.Header{"Traceparent": {callerTP}, "X-Other": {"1"}}}
	_, fnReq, exec := tr.Acquired(ctx, req, inv, acquired, nil)
	end := acquired.Add(3 * time.Millisecond)
	exec.End(end, &gust.Response{Status: 201}, nil)
	server.End(201, "hello", 3, "inv1")

	if req.Header.Get("Traceparent") != callerTP || fnReq == req {
		t.Fatal("the caller's request was changed; want a copy")
	}
	if fnReq.Header.Get("X-Other") != "1" || fnReq.Header.Get("Tracestate") != "vendor=abc" {
		t.Fatalf("function headers = %v", fnReq.Header)
	}

	spans := flushed(t, tr, rcv)
	if len(spans) != 4 {
		t.Fatalf("got spans %v, want 4", names(spans))
	}
	gw := one(t, spans, "POST /fn/{name}")
	wait, cold, ex := one(t, spans, trace.SpanQueueWait), one(t, spans, trace.SpanColdStart), one(t, spans, trace.SpanExecution)
	for _, s := range spans {
		if tracetest.TraceID(s) != callerTrace {
			t.Errorf("span %q in trace %s, want the caller's %s", s.Name, tracetest.TraceID(s), callerTrace)
		}
	}
	if tracetest.ParentID(gw) != callerSpan || gw.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("gateway span parent %s kind %v, want %s SERVER", tracetest.ParentID(gw), gw.Kind, callerSpan)
	}
	for _, s := range []*tracepb.Span{wait, cold, ex} {
		if tracetest.ParentID(s) != tracetest.SpanID(gw) {
			t.Errorf("span %q parent %s, want the gateway span %s", s.Name, tracetest.ParentID(s), tracetest.SpanID(gw))
		}
		wantAttr(t, s, "faas.invocation_id", "inv1")
	}
	wantAttr(t, ex, "faas.name", "hello")
	wantAttr(t, ex, "faas.version", "3")
	wantAttr(t, gw, "http.request.method", "POST")
	wantAttr(t, gw, "http.route", "/fn/{name}")
	wantAttr(t, gw, "http.response.status_code", "201")
	wantAttr(t, gw, "faas.name", "hello")
	wantAttr(t, gw, "faas.version", "3")
	wantAttr(t, gw, "faas.invocation_id", "inv1")
	wantAttr(t, ex, "faas.coldstart", "true")
	wantAttr(t, ex, "http.response.status_code", "201")

	at := func(tm time.Time) uint64 { return uint64(tm.UnixNano()) }
	for _, c := range []struct {
		s          *tracepb.Span
		start, end time.Time
	}{
		{wait, start, start.Add(5 * time.Millisecond)},
		{cold, start.Add(5 * time.Millisecond), acquired},
		{ex, acquired, end},
	} {
		if c.s.StartTimeUnixNano != at(c.start) || c.s.EndTimeUnixNano != at(c.end) {
			t.Errorf("span %q runs %d..%d, want %d..%d", c.s.Name, c.s.StartTimeUnixNano, c.s.EndTimeUnixNano, at(c.start), at(c.end))
		}
	}
	want := "00-" + callerTrace + "-" + tracetest.SpanID(ex) + "-01"
	if got := fnReq.Header.Get("Traceparent"); got != want {
		t.Errorf("function traceparent = %q, want %q (the execution span)", got, want)
	}
	if res := rcv.Resource(); res["service.name"] != "gust" || res["service.version"] != "9.9" {
		t.Errorf("resource = %v", res)
	}
}

// Under StartGateway the request's own header map gets the function's
// traceparent, in place (the gateway builds one per request); spans and
// their links are as under StartServer. Spans are recycled once
// exported: a second invocation's spans must not show the first's.
func TestGatewayWritesHeaderInPlace(t *testing.T) {
	rcv := tracetest.New(t)
	tr := mustNew(t, trace.Config{Endpoint: rcv.URL()})
	defer tr.Shutdown(context.Background())
	for i, id := range []string{"g1", "g2"} {
		hr := httptest.NewRequest("GET", "/fn/hello", nil)
		hr.Header.Set("Traceparent", callerTP)
		ctx, server := tr.StartGateway(hr, "/fn/{name}")
		now := time.Now()
		inv := &gust.Invocation{ID: id, Function: "hello", Version: i + 1, Trigger: "http", Start: now}
		req := &gust.Request{ID: id, Header: http.Header{"Traceparent": {callerTP}, "Tracestate": {"stale=1"}, "X-Other": {"1"}}}
		_, fnReq, exec := tr.Acquired(ctx, req, inv, now, nil)
		if fnReq != req {
			t.Fatal("under StartGateway the request was copied")
		}
		exec.End(now, &gust.Response{Status: 200}, nil)
		server.End(200, "hello", i+1, id)

		var spans []*tracepb.Span
		for _, s := range flushed(t, tr, rcv) {
			if got, _ := tracetest.Attr(s, "faas.invocation_id"); got == id {
				spans = append(spans, s)
			}
		}
		if len(spans) != 2 {
			t.Fatalf("call %s: spans %v, want gateway and execution", id, names(spans))
		}
		gw, ex := one(t, spans, "GET /fn/{name}"), one(t, spans, trace.SpanExecution)
		if tracetest.ParentID(ex) != tracetest.SpanID(gw) || tracetest.ParentID(gw) != callerSpan {
			t.Errorf("call %s: spans not linked caller -> gateway -> execution", id)
		}
		wantAttr(t, gw, "faas.invocation_id", id)
		wantAttr(t, ex, "faas.invocation_id", id)
		wantAttr(t, ex, "faas.version", strconv.Itoa(i+1))
		if got, want := req.Header.Get("Traceparent"), "00-"+callerTrace+"-"+tracetest.SpanID(ex)+"-01"; got != want {
			t.Errorf("call %s: traceparent in place = %q, want %q", id, got, want)
		}
		if req.Header.Get("Tracestate") != "" || req.Header.Get("X-Other") != "1" {
			t.Errorf("call %s: headers = %v, want the caller's tracestate (none) and the rest kept", id, req.Header)
		}
	}
}

// An event that did not come through the gateway carries its context in
// its headers; a call with none starts a trace of its own.
func TestParentFromHeaderOrNew(t *testing.T) {
	rcv := tracetest.New(t)
	tr := mustNew(t, trace.Config{Endpoint: rcv.URL()})
	defer tr.Shutdown(context.Background())
	now := time.Now()

	inv := &gust.Invocation{ID: "a", Function: "f", Version: 1, Trigger: "async", Start: now}
	_, r1, s1 := tr.Acquired(context.Background(), &gust.Request{Header: http.Header{"Traceparent": {callerTP}}}, inv, now, nil)
	s1.End(now, nil, nil)
	inv2 := &gust.Invocation{ID: "b", Function: "f", Version: 1, Trigger: "cron", Start: now}
	_, r2, s2 := tr.Acquired(context.Background(), &gust.Request{}, inv2, now, nil)
	s2.End(now, nil, nil)

	spans := flushed(t, tr, rcv)
	if len(spans) != 2 || len(tracetest.ByName(spans, trace.SpanExecution)) != 2 {
		t.Fatalf("two warm calls that did not wait left %v, want an execution span each", names(spans))
	}
	for _, s := range spans {
		id, _ := tracetest.Attr(s, "faas.invocation_id")
		switch id {
		case "a":
			if tracetest.TraceID(s) != callerTrace || tracetest.ParentID(s) != callerSpan {
				t.Errorf("async span %q: trace %s parent %s, want the event's", s.Name, tracetest.TraceID(s), tracetest.ParentID(s))
			}
		case "b":
			if tracetest.ParentID(s) != "" || tracetest.TraceID(s) == callerTrace {
				t.Errorf("cron span %q should start its own trace", s.Name)
			}
			if s.Name == trace.SpanExecution {
				wantAttr(t, s, "faas.trigger", "timer")
			}
		}
	}
	if !strings.Contains(r1.Header.Get("Traceparent"), callerTrace) {
		t.Errorf("async function traceparent %q lacks the event's trace", r1.Header.Get("Traceparent"))
	}
	if r2.Header.Get("Traceparent") == "" {
		t.Error("a traced call without a caller's context gave the function no traceparent")
	}
}

// A throttled call has a failed queue-wait span and no execution; a start
// that failed has a failed cold-start span.
func TestFailedAcquire(t *testing.T) {
	rcv := tracetest.New(t)
	tr := mustNew(t, trace.Config{Endpoint: rcv.URL()})
	defer tr.Shutdown(context.Background())
	now := time.Now()

	inv := &gust.Invocation{ID: "t", Function: "f", Version: 1, Start: now}
	_, _, s := tr.Acquired(context.Background(), &gust.Request{}, inv, now.Add(time.Second), gust.Errorf(gust.ETHROTTLED, "busy"))
	s.End(now, nil, nil) // a no-op: there is no execution
	inv2 := &gust.Invocation{ID: "o", Function: "f", Version: 1, Start: now}
	_, _, s = tr.Acquired(context.Background(), &gust.Request{}, inv2, now.Add(time.Second), gust.Errorf(gust.EOOM, "too big"))
	s.End(now, nil, nil)

	spans := flushed(t, tr, rcv)
	if len(tracetest.ByName(spans, trace.SpanExecution)) != 0 {
		t.Fatal("a call that got no instance has an execution span")
	}
	for _, s := range spans {
		id, _ := tracetest.Attr(s, "faas.invocation_id")
		failed := s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR
		switch {
		case id == "t" && s.Name == trace.SpanQueueWait:
			if !failed || s.EndTimeUnixNano-s.StartTimeUnixNano != uint64(time.Second) {
				t.Errorf("throttled queue wait: failed %v, length %d", failed, s.EndTimeUnixNano-s.StartTimeUnixNano)
			}
			wantAttr(t, s, "error.type", gust.ETHROTTLED)
		case id == "o" && s.Name == trace.SpanColdStart:
			if !failed {
				t.Error("failed cold start not marked as an error")
			}
			wantAttr(t, s, "error.type", gust.EOOM)
		default:
			t.Errorf("unexpected span %q of %q", s.Name, id)
		}
	}
}

func TestInjectExtractTraceParent(t *testing.T) {
	h := http.Header{"Traceparent": {callerTP}, "Tracestate": {"a=1"}}
	ctx := trace.Extract(context.Background(), h)
	tp, ts := trace.TraceParent(ctx)
	if tp != callerTP || ts != "a=1" {
		t.Fatalf("TraceParent = %q %q", tp, ts)
	}
	out := http.Header{"Tracestate": {"stale=1"}}
	trace.Inject(ctx, out)
	if out.Get("Traceparent") != callerTP || out.Get("Tracestate") != "a=1" {
		t.Fatalf("Inject wrote %v", out)
	}
	empty := http.Header{"Traceparent": {"keep"}}
	trace.Inject(context.Background(), empty)
	if empty.Get("Traceparent") != "keep" {
		t.Fatal("Inject without a span changed the header")
	}
	if tp, _ := trace.TraceParent(trace.Extract(context.Background(), http.Header{"Traceparent": {"garbage"}})); tp != "" {
		t.Fatalf("garbage traceparent extracted as %q", tp)
	}
}

// BenchmarkInvocationSpans is the tracing cost of one warm invocation:
// the gateway's span, the queue-wait and execution spans, the function's
// traceparent, and the export to a receiver on 127.0.0.1.
func BenchmarkInvocationSpans(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		cfg := trace.Config{}
		if on {
			name, cfg.Endpoint = "on", tracetest.NewDiscarding(b).URL()
		}
		b.Run(name, func(b *testing.B) {
			tr, err := trace.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			hr, req := benchRequests()
			b.ReportAllocs()
			for b.Loop() {
				tracedCall(tr, hr, req, "i")
			}
		})
	}
}

// BenchmarkTraceCPU reports the CPU time the whole process spends per
// traced warm invocation (gateway and execution spans, the function's
// traceparent, the export), at a function's pace rather than a flood, so
// no span is dropped. It is the cost that competes with functions for the
// machine's cores. The receiver runs in the same process: "wire" only
// checks and counts what arrives, as a collector elsewhere would cost
// this process nothing; "decode" also builds every span as a Go value,
// what a collector on the same machine would spend; "off" is the loop
// alone, to subtract.
func BenchmarkTraceCPU(b *testing.B) {
	for _, rc := range []struct {
		name string
		new  func(testing.TB) *tracetest.Receiver
	}{{"off", nil}, {"wire", tracetest.NewDiscarding}, {"decode", tracetest.New}} {
		b.Run(rc.name, func(b *testing.B) {
			var rcv *tracetest.Receiver
			if rc.new != nil {
				rcv = rc.new(b)
			}
			benchTraceCPU(b, rcv)
		})
	}
}

// benchTraceCPU runs with tracing off when rcv is nil: the loop's own
// cost, to subtract.
func benchTraceCPU(b *testing.B, rcv *tracetest.Receiver) {
	var cfg trace.Config
	if rcv != nil {
		cfg.Endpoint = rcv.URL()
	}
	tr, err := trace.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	hr, req := benchRequests()
	runtime.GC()
	before := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tracedCall(tr, hr, req, "0f9da94dea306c4ecbbf11d3d777b2d0")
		if i%16 == 15 {
			time.Sleep(time.Millisecond) // a busy function's pace, not a flood
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.ForceFlush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	if rcv == nil {
		return
	}
	if got := rcv.Received(); got != 2*b.N {
		b.Fatalf("receiver got %d spans, want %d", got, 2*b.N)
	}
}

// benchRequests returns a caller's request to the gateway and the
// function's request made from it, with a header map of its own, which
// Acquired changes in place under StartGateway (as the gateway's does).
func benchRequests() (*http.Request, *gust.Request) {
	hr := httptest.NewRequest("GET", "/fn/hello", nil)
	hr.Header.Set("Traceparent", callerTP)
	hr.Header.Set("User-Agent", "bench")
	return hr, &gust.Request{ID: "i", Header: hr.Header.Clone()}
}

// tracedCall traces one warm invocation as the gateway and invoker do:
// the gateway's span, then the queue-wait and execution spans.
func tracedCall(tr *trace.Tracer, hr *http.Request, req *gust.Request, id string) {
	now := time.Now()
	inv := gust.Invocation{ID: id, Function: "hello", Version: 1, Trigger: "http", Start: now}
	ctx, server := tr.StartGateway(hr, "/fn/{name}")
	_, _, exec := tr.Acquired(ctx, req, &inv, now, nil)
	exec.End(now, &gust.Response{Status: 200}, nil)
	server.End(200, "hello", 1, id)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A caller that did not sample its trace gets no spans from gust, but the
// function still gets a traceparent in the caller's trace, with a span id
// of its own and the caller's flags; a malformed tracestate is dropped and
// the traceparent kept.
func TestUnsampledCallerAndBadTraceState(t *testing.T) {
	rcv := tracetest.New(t)
	tr := mustNew(t, trace.Config{Endpoint: rcv.URL()})
	defer tr.Shutdown(context.Background())
	const unsampled = "00-" + callerTrace + "-" + callerSpan + "-00"
	hr := httptest.NewRequest("GET", "/fn/hello", nil)
	hr.Header.Set("Traceparent", unsampled)
	hr.Header.Set("Tracestate", "not a valid=tracestate,,=")
	ctx, server := tr.StartServer(hr, "/fn/{name}")
	now := time.Now()
	inv := &gust.Invocation{ID: "u", Function: "f", Version: 1, Start: now}
	_, fnReq, exec := tr.Acquired(ctx, &gust.Request{Header: hr.Header}, inv, now, nil)
	exec.End(now, &gust.Response{Status: 200}, nil)
	server.End(200, "f", 1, "u")

	tp := fnReq.Header.Get("Traceparent")
	if !strings.HasPrefix(tp, "00-"+callerTrace+"-") || !strings.HasSuffix(tp, "-00") || strings.Contains(tp, callerSpan) {
		t.Errorf("function traceparent = %q, want the caller's trace, a new span id, flags 00", tp)
	}
	if ts := fnReq.Header.Get("Tracestate"); ts != "" {
		t.Errorf("a malformed tracestate was passed on: %q", ts)
	}
	if spans := flushed(t, tr, rcv); len(spans) != 0 {
		t.Errorf("an unsampled trace exported %v", names(spans))
	}
	for _, bad := range []string{
		"ff-" + callerTrace + "-" + callerSpan + "-01",                  // version ff
		"00-" + strings.ToUpper(callerTrace) + "-" + callerSpan + "-01", // upper case
		"00-00000000000000000000000000000000-" + callerSpan + "-01",     // zero trace id
		"00-" + callerTrace + "-0000000000000000-01",                    // zero span id
		"00-" + callerTrace + "-" + callerSpan + "-01-extra",            // version 00 with more
		"00-" + callerTrace + "-" + callerSpan + "-09",                  // reserved flags in 00
	} {
		if tp, _ := trace.TraceParent(trace.Extract(context.Background(), http.Header{"Traceparent": {bad}})); tp != "" {
			t.Errorf("%q extracted as %q", bad, tp)
		}
	}
	future := "01-" + callerTrace + "-" + callerSpan + "-03-more"
	if tp, _ := trace.TraceParent(trace.Extract(context.Background(), http.Header{"Traceparent": {future}})); tp != "00-"+callerTrace+"-"+callerSpan+"-03" {
		t.Errorf("a later version's traceparent extracted as %q", tp)
	}
}
