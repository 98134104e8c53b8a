package trace

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gustfaas/gust"
)

// Header names of W3C Trace Context.
const (
	HeaderTraceParent = "Traceparent"
	HeaderTraceState  = "Tracestate"
)

// Names of the spans of an invocation below the gateway's.
const (
	SpanQueueWait = "queue wait"
	SpanColdStart = "cold start"
	SpanExecution = "execution"
)

// DefaultTracesPath is appended to an endpoint given without a path, as
// OTEL_EXPORTER_OTLP_ENDPOINT does.
const DefaultTracesPath = "/v1/traces"

// Config configures a Tracer.
type Config struct {
	// Endpoint is the OTLP/HTTP receiver: "http://collector:4318" (the
	// traces path /v1/traces is added) or a full URL with a path, used as
	// is. Empty: tracing is off and the Tracer is a no-op.
	Endpoint string
	// ServiceName is the service.name resource attribute (default "gust").
	ServiceName string
	// ServiceVersion is the service.version resource attribute.
	ServiceVersion string
	// BatchTimeout is how long spans may wait before being sent
	// (default 2s). Shutdown and ForceFlush send at once.
	BatchTimeout time.Duration
	// Logger gets export failures, at most one line per 10 seconds.
	// nil: slog.Default().
	Logger *slog.Logger
}

// Sizes of the span queue and of one export.
const (
	maxQueuedSpans = 8192
	maxBatchSpans  = 1024
)

// Tracer records and exports the spans of invocations. A nil *Tracer and
// one built without an Endpoint are valid no-ops. It is safe for
// concurrent use.
//
// It does not use OpenTelemetry's SDK: the SDK costs each span a dozen
// allocations (attribute sets, events and links slices, a read-only copy)
// and a goroutine wake to queue it, which made tracing alone cost a warm
// call about 10% of its throughput. A span here is one fixed-size struct
// filled on the request's goroutine and appended to a buffer under a
// mutex; the exporter's goroutine wakes once per batch and writes OTLP
// protobuf straight from those structs (see export.go).
type Tracer struct {
	exp *exporter
}

// New returns a Tracer exporting to cfg.Endpoint, or a no-op Tracer when
// it is empty. Errors: EINVALID for an endpoint that is not an http or
// https URL.
func New(cfg Config) (*Tracer, error) {
	if cfg.Endpoint == "" {
		return &Tracer{}, nil
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "gust"
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	endpoint, err := EndpointURL(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	return &Tracer{exp: newExporter(cfg, endpoint)}, nil
}

// EndpointURL returns the URL spans are posted to for an --otlp-endpoint
// value: DefaultTracesPath is added when it has no path. Errors: EINVALID.
func EndpointURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", gust.Errorf(gust.EINVALID, "invalid OTLP endpoint %q: want an http or https URL such as http://127.0.0.1:4318", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = DefaultTracesPath
	}
	return u.String(), nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracer) Enabled() bool { return t != nil && t.exp != nil }

// ForceFlush sends every finished span now. A failed export is logged,
// not returned; ctx bounds the wait.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.exp.flush(ctx); err != nil {
		return fmt.Errorf("flushing spans: %w", err)
	}
	return nil
}

// Shutdown sends the remaining spans and stops the exporter. Spans ended
// later are dropped.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.exp.shutdown(ctx); err != nil {
		return fmt.Errorf("shutting the tracer down: %w", err)
	}
	return nil
}

// Inject writes the trace context of the span in ctx to h as traceparent
// and tracestate, replacing any there. With no valid span in ctx it leaves
// h alone. Async uses it to store the context with an event.
func Inject(ctx context.Context, h http.Header) {
	if sc := fromContext(ctx); sc != nil {
		inject(sc, h)
	}
}

func inject(sc *spanContext, h http.Header) {
	delete(h, HeaderTraceState)
	if sc.traceState != "" {
		h[HeaderTraceState] = []string{sc.traceState}
	}
	h[HeaderTraceParent] = []string{sc.traceParent()}
}

// Extract returns ctx with the remote trace context found in h, or ctx
// unchanged when h has no valid traceparent.
func Extract(ctx context.Context, h http.Header) context.Context {
	if h == nil {
		return ctx
	}
	sc, ok := extract(h)
	if !ok {
		return ctx
	}
	return withSpanContext(ctx, &sc)
}

// TraceParent returns the traceparent and tracestate of the span in ctx,
// for a CloudEvent's distributed-tracing extension; "" when there is none.
func TraceParent(ctx context.Context) (traceparent, tracestate string) {
	sc := fromContext(ctx)
	if sc == nil {
		return "", ""
	}
	return sc.traceParent(), sc.traceState
}

// ServerSpan is the span of one HTTP request at a front door. The zero
// value (tracing off) does nothing.
type ServerSpan struct {
	s *span
}

// spanNames holds "METHOD route" for each route seen, so a span's name is
// not built anew per request.
var spanNames sync.Map // route -> *sync.Map of method -> name

func spanName(method, route string) string {
	byMethod, ok := spanNames.Load(route)
	if !ok {
		byMethod, _ = spanNames.LoadOrStore(route, new(sync.Map))
	}
	m := byMethod.(*sync.Map)
	if name, ok := m.Load(method); ok {
		return name.(string)
	}
	// method is one of knownMethods or "_OTHER", so this stays small.
	name := method + " " + route
	m.Store(method, name)
	return name
}

// knownMethod returns m if it is a standard method, else "_OTHER", as
// OpenTelemetry's HTTP conventions ask (a method is user input).
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodConnect,
		http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// StartServer starts the server span of r at route (a pattern such as
// "/fn/{name}", never the raw path: span names must not grow with user
// input), as a child of the traceparent r carries, and returns a context
// holding it. With tracing off it returns r's context and a no-op span.
func (t *Tracer) StartServer(r *http.Request, route string) (context.Context, ServerSpan) {
	return t.startServer(r, route, false)
}

// StartRequest is StartServer for a handler that passes the span on in
// the request: r itself when tracing is off (no copy of the request on
// the untraced path), else r with the span's context.
func (t *Tracer) StartRequest(r *http.Request, route string) (*http.Request, ServerSpan) {
	if !t.Enabled() {
		return r, ServerSpan{}
	}
	ctx, span := t.startServer(r, route, false)
	return r.WithContext(ctx), span
}

// StartGateway is StartServer for a front door that gives each request it
// invokes under the span a header map of its own, shared with nobody (the
// gateway builds one per request): Acquired then writes the function's
// traceparent into that map rather than copying the map and the request,
// which was a third of what tracing allocated per call.
func (t *Tracer) StartGateway(r *http.Request, route string) (context.Context, ServerSpan) {
	return t.startServer(r, route, true)
}

func (t *Tracer) startServer(r *http.Request, route string, ownHeaders bool) (context.Context, ServerSpan) {
	ctx := r.Context()
	if !t.Enabled() {
		return ctx, ServerSpan{}
	}
	method := knownMethod(r.Method)
	parent := fromContext(ctx) // a span of a handler around this one, if any
	if sc, ok := extract(r.Header); ok {
		parent = &sc
	}
	s := t.start(parent, spanName(method, route), kindServer, time.Now())
	s.setString("http.request.method", method)
	s.setString("http.route", route)
	s.setString("url.path", r.URL.Path)
	c := &spanCtx{Context: ctx, sc: s.sc}
	c.sc.ownHeaders = ownHeaders
	return c, ServerSpan{s: s}
}

// End ends the span with the response status and the invocation it served
// (function "" when the request never resolved one). As OpenTelemetry's
// HTTP conventions say for a server, only 5xx marks the span an error.
func (s ServerSpan) End(status int, function string, version int, invocationID string) {
	if s.s == nil || s.s.ended {
		return // an ended span may be in the exporter's hands
	}
	s.s.setInt("http.response.status_code", status)
	s.s.setString("faas.invocation_id", invocationID)
	if function != "" {
		s.s.setString("faas.name", function)
		s.s.setIntString("faas.version", version)
	}
	if status >= 500 {
		s.s.failed, s.s.statusMsg = true, http.StatusText(status)
	}
	s.s.finish(time.Now())
}

// SpanCronTick is the span of a cron tick, the root of the trace of the
// invocation it enqueues.
const SpanCronTick = "cron tick"

// StartProducer starts a span for an event gust makes itself (a cron
// tick), as a child of the span in ctx or the root of a new trace, and
// returns a context holding it and the function that ends it. Its
// TraceParent goes with the event, so the invocation's spans join this
// trace. With tracing off it returns ctx and a no-op.
func (t *Tracer) StartProducer(ctx context.Context, name, invocationID string) (context.Context, func()) {
	if !t.Enabled() {
		return ctx, func() {}
	}
	s := t.start(fromContext(ctx), name, kindProducer, time.Now())
	s.setString("faas.invocation_id", invocationID)
	return withSpan(ctx, s), func() { s.finish(time.Now()) }
}

// Dequeued records the queue-wait span of an event that waited in a queue
// (an async invocation, a cron tick) from queued until dequeued, as a child
// of the trace context in h: the span that accepted the event. It returns
// ctx holding that context as the remote parent, so the invoker's spans
// (cold start, execution) continue the same trace beside the queue wait,
// as a synchronous call's do under the gateway's span. Without a valid
// traceparent in h the wait starts a trace of its own. With tracing off it
// returns ctx unchanged.
func (t *Tracer) Dequeued(ctx context.Context, h http.Header, invocationID string, queued, dequeued time.Time) context.Context {
	if !t.Enabled() {
		return ctx
	}
	ctx = Extract(ctx, h)
	if !dequeued.After(queued) {
		return ctx
	}
	wait := t.start(fromContext(ctx), SpanQueueWait, kindConsumer, queued)
	wait.setString("faas.invocation_id", invocationID)
	sc := wait.sc // read before finish: then the exporter owns the span
	wait.finish(dequeued)
	if fromContext(ctx) == nil {
		// No parent: the execution joins the queue wait's new trace.
		sc.remote = true
		ctx = withSpanContext(ctx, &sc)
	}
	return ctx
}

// ExecSpan is the execution span of one invocation. The zero value (tracing
// off, or no instance was acquired) does nothing.
type ExecSpan struct {
	s *span
}

// Acquired records how the invocation inv got its instance: a queue-wait
// span from inv.Start for inv.QueueWait if it waited and, if inv.Cold, a
// cold-start span up to acquired. A call that found an idle instance has
// neither: a zero-length span says nothing its absence does not, and each
// span costs every call its recording and export. With acquireErr set (throttled, or the start failed) the
// span where it failed carries the error and no execution follows.
// Otherwise it starts the execution span at acquired and returns a context
// holding it with a copy of req whose traceparent names it, for the
// function (under StartGateway, req itself with its header changed in
// place; doing it again for a retry of req names the new span). The parent
// is the span in ctx (the gateway's) or, for events that did not come
// through the gateway, the traceparent in req.Header.
// With tracing off it returns its arguments unchanged.
func (t *Tracer) Acquired(ctx context.Context, req *gust.Request, inv *gust.Invocation, acquired time.Time, acquireErr error) (context.Context, *gust.Request, ExecSpan) {
	if !t.Enabled() {
		return ctx, req, ExecSpan{}
	}
	if fromContext(ctx) == nil {
		ctx = Extract(ctx, req.Header)
	}
	waitEnd := inv.Start.Add(inv.QueueWait)
	coldFailed := false
	if acquireErr != nil {
		switch gust.ErrorCode(acquireErr) {
		case gust.ETHROTTLED, gust.ECAPACITY, gust.EUNAVAILABLE:
			waitEnd = acquired
		default:
			coldFailed = true // the driver failed to start an instance
		}
	}
	// The function's name and version are on the execution span (and the
	// gateway's); the invocation id alone ties these to them.
	if waitEnd.After(inv.Start) {
		wait := t.start(fromContext(ctx), SpanQueueWait, kindInternal, inv.Start)
		wait.setString("faas.invocation_id", inv.ID)
		if acquireErr != nil && !coldFailed {
			failed(wait, acquireErr)
		}
		wait.finish(waitEnd)
	}
	if inv.Cold || coldFailed {
		cold := t.start(fromContext(ctx), SpanColdStart, kindInternal, waitEnd)
		cold.setString("faas.invocation_id", inv.ID)
		if coldFailed {
			failed(cold, acquireErr)
		}
		cold.finish(acquired)
	}
	if acquireErr != nil {
		return ctx, req, ExecSpan{}
	}

	exec := t.start(fromContext(ctx), SpanExecution, kindInternal, acquired)
	exec.setString("faas.name", inv.Function)
	exec.setIntString("faas.version", inv.Version)
	exec.setString("faas.invocation_id", inv.ID)
	exec.setBool("faas.coldstart", inv.Cold)
	exec.setString("faas.trigger", triggerKind(inv.Trigger))
	execCtx := withSpan(ctx, exec)
	if p := fromContext(ctx); p != nil && p.ownHeaders && req.Header != nil {
		inject(&exec.sc, req.Header) // the gateway's own map (StartGateway)
		return execCtx, req, ExecSpan{s: exec}
	}
	// A copy: the caller's request (an async event redelivered, say) keeps
	// the traceparent it came with.
	cp := *req
	cp.Header = req.Header.Clone()
	if cp.Header == nil {
		cp.Header = http.Header{}
	}
	inject(&exec.sc, cp.Header)
	return execCtx, &cp, ExecSpan{s: exec}
}

// End ends the execution span at end with the invocation's outcome: the
// status the function answered, or the error that ended the call.
func (s ExecSpan) End(end time.Time, resp *gust.Response, err error) {
	if s.s == nil || s.s.ended {
		return // an ended span may be in the exporter's hands
	}
	if err != nil {
		failed(s.s, err)
	} else if resp != nil {
		s.s.setInt("http.response.status_code", resp.Status)
	}
	s.s.finish(end)
}

func failed(s *span, err error) {
	s.setError(gust.ErrorCode(err), gust.ErrorMessage(err))
}

// triggerKind maps gust's trigger names to OpenTelemetry's faas.trigger
// values.
func triggerKind(trigger string) string {
	switch trigger {
	case "http", "":
		return "http"
	case "cron":
		return "timer"
	case "async", "stream", "nats":
		return "pubsub"
	case "webhook":
		return "http"
	default:
		return "other"
	}
}
