package trace

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"

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
type Tracer struct {
	tp *sdktrace.TracerProvider
	tr oteltrace.Tracer
}

var propagator = propagation.TraceContext{}

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
	// Not otlptracehttp.New's context: it is only used for the client's
	// start, which does no I/O.
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("creating the OTLP trace exporter for %s: %w", endpoint, err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.ServiceVersion))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(&loggingExporter{SpanExporter: exp, log: cfg.Logger, endpoint: endpoint},
			sdktrace.WithBatchTimeout(cfg.BatchTimeout),
			// A warm node ends thousands of spans a second: a queue of
			// several seconds of them rides out a slow collector without
			// dropping, and larger batches mean fewer posts per span.
			sdktrace.WithMaxQueueSize(maxQueuedSpans),
			sdktrace.WithMaxExportBatchSize(maxBatchSpans)),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	return &Tracer{tp: tp, tr: tp.Tracer("github.com/gustfaas/gust")}, nil
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
func (t *Tracer) Enabled() bool { return t != nil && t.tp != nil }

// ForceFlush sends every finished span now.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.tp.ForceFlush(ctx); err != nil {
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
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutting the tracer down: %w", err)
	}
	return nil
}

// Inject writes the trace context of the span in ctx to h as traceparent
// and tracestate, replacing any there. With no valid span in ctx it leaves
// h alone. Async uses it to store the context with an event.
func Inject(ctx context.Context, h http.Header) {
	if !oteltrace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	h.Del(HeaderTraceState)
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Extract returns ctx with the remote trace context found in h, or ctx
// unchanged when h has no valid traceparent.
func Extract(ctx context.Context, h http.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// TraceParent returns the traceparent and tracestate of the span in ctx,
// for a CloudEvent's distributed-tracing extension; "" when there is none.
func TraceParent(ctx context.Context) (traceparent, tracestate string) {
	sc := oteltrace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	h := http.Header{}
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
	return h.Get(HeaderTraceParent), h.Get(HeaderTraceState)
}

// ServerSpan is the span of one HTTP request at a front door. The zero
// value (tracing off) does nothing.
type ServerSpan struct {
	span oteltrace.Span
}

var serverKind = oteltrace.WithSpanKind(oteltrace.SpanKindServer)

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

var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodConnect: true,
	http.MethodOptions: true, http.MethodTrace: true,
}

// StartServer starts the server span of r at route (a pattern such as
// "/fn/{name}", never the raw path: span names must not grow with user
// input), as a child of the traceparent r carries, and returns a context
// holding it. With tracing off it returns r's context and a no-op span.
func (t *Tracer) StartServer(r *http.Request, route string) (context.Context, ServerSpan) {
	ctx := r.Context()
	if !t.Enabled() {
		return ctx, ServerSpan{}
	}
	method := r.Method
	if !knownMethods[method] {
		method = "_OTHER"
	}
	ctx = Extract(ctx, r.Header)
	ctx, span := t.tr.Start(ctx, spanName(method, route), serverKind,
		oteltrace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("http.route", route),
			attribute.String("url.path", r.URL.Path),
		))
	return ctx, ServerSpan{span: span}
}

// End ends the span with the response status and the invocation it served
// (function "" when the request never resolved one). As OpenTelemetry's
// HTTP conventions say for a server, only 5xx marks the span an error.
func (s ServerSpan) End(status int, function string, version int, invocationID string) {
	if s.span == nil {
		return
	}
	// One call: each grows the span's attribute slice.
	attrs := [4]attribute.KeyValue{
		attribute.Int("http.response.status_code", status),
		attribute.String("faas.invocation_id", invocationID),
	}
	n := 2
	if function != "" {
		attrs[2] = attribute.String("faas.name", function)
		attrs[3] = attribute.String("faas.version", strconv.Itoa(version))
		n = 4
	}
	s.span.SetAttributes(attrs[:n]...)
	if status >= 500 {
		s.span.SetStatus(codes.Error, http.StatusText(status))
	}
	s.span.End()
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
	ctx, span := t.tr.Start(ctx, name, oteltrace.WithSpanKind(oteltrace.SpanKindProducer),
		oteltrace.WithAttributes(attribute.String("faas.invocation_id", invocationID)))
	return ctx, func() { span.End() }
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
	_, wait := t.tr.Start(ctx, SpanQueueWait, oteltrace.WithTimestamp(queued),
		oteltrace.WithSpanKind(oteltrace.SpanKindConsumer),
		oteltrace.WithAttributes(attribute.String("faas.invocation_id", invocationID)))
	wait.End(oteltrace.WithTimestamp(dequeued))
	if !oteltrace.SpanContextFromContext(ctx).IsValid() {
		// No parent: the execution joins the queue wait's new trace.
		ctx = oteltrace.ContextWithRemoteSpanContext(ctx, wait.SpanContext())
	}
	return ctx
}

// ExecSpan is the execution span of one invocation. The zero value (tracing
// off, or no instance was acquired) does nothing.
type ExecSpan struct {
	span oteltrace.Span
}

// Acquired records how the invocation inv got its instance: a queue-wait
// span from inv.Start for inv.QueueWait if it waited and, if inv.Cold, a
// cold-start span up to acquired. A call that found an idle instance has
// neither: a zero-length span says nothing its absence does not, and each
// span costs every call its recording and export. With acquireErr set (throttled, or the start failed) the
// span where it failed carries the error and no execution follows.
// Otherwise it starts the execution span at acquired and returns a context
// holding it with a copy of req whose traceparent names it, for the
// function. The parent is the span in ctx (the gateway's) or, for events
// that did not come through the gateway, the traceparent in req.Header.
// With tracing off it returns its arguments unchanged.
func (t *Tracer) Acquired(ctx context.Context, req *gust.Request, inv *gust.Invocation, acquired time.Time, acquireErr error) (context.Context, *gust.Request, ExecSpan) {
	if !t.Enabled() {
		return ctx, req, ExecSpan{}
	}
	if !oteltrace.SpanContextFromContext(ctx).IsValid() {
		ctx = Extract(ctx, req.Header)
	}
	fn := attribute.String("faas.name", inv.Function)
	ver := attribute.String("faas.version", strconv.Itoa(inv.Version))
	id := attribute.String("faas.invocation_id", inv.ID)

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
		_, wait := t.tr.Start(ctx, SpanQueueWait, oteltrace.WithTimestamp(inv.Start),
			oteltrace.WithAttributes(id))
		if acquireErr != nil && !coldFailed {
			failed(wait, acquireErr)
		}
		wait.End(oteltrace.WithTimestamp(waitEnd))
	}
	if inv.Cold || coldFailed {
		_, cold := t.tr.Start(ctx, SpanColdStart, oteltrace.WithTimestamp(waitEnd),
			oteltrace.WithAttributes(id))
		if coldFailed {
			failed(cold, acquireErr)
		}
		cold.End(oteltrace.WithTimestamp(acquired))
	}
	if acquireErr != nil {
		return ctx, req, ExecSpan{}
	}

	ctx, exec := t.tr.Start(ctx, SpanExecution, oteltrace.WithTimestamp(acquired),
		oteltrace.WithAttributes(fn, ver, id,
			attribute.Bool("faas.coldstart", inv.Cold),
			attribute.String("faas.trigger", triggerKind(inv.Trigger))))
	// A copy: the caller's request (an async event redelivered, say) keeps
	// the traceparent it came with.
	cp := *req
	cp.Header = req.Header.Clone()
	if cp.Header == nil {
		cp.Header = http.Header{}
	}
	Inject(ctx, cp.Header)
	return ctx, &cp, ExecSpan{span: exec}
}

// End ends the execution span at end with the invocation's outcome: the
// status the function answered, or the error that ended the call.
func (s ExecSpan) End(end time.Time, resp *gust.Response, err error) {
	if s.span == nil {
		return
	}
	if err != nil {
		failed(s.span, err)
	} else if resp != nil {
		s.span.SetAttributes(attribute.Int("http.response.status_code", resp.Status))
	}
	s.span.End(oteltrace.WithTimestamp(end))
}

func failed(span oteltrace.Span, err error) {
	span.SetAttributes(attribute.String("error.type", gust.ErrorCode(err)))
	span.SetStatus(codes.Error, gust.ErrorMessage(err))
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

// loggingExporter reports failed exports through gust's logger instead of
// OpenTelemetry's global error handler, at most once per 10 seconds: a
// collector that is down must not flood the log.
type loggingExporter struct {
	sdktrace.SpanExporter
	log      *slog.Logger
	endpoint string

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	e.mu.Lock()
	e.dropped += len(spans)
	now := time.Now()
	if now.Sub(e.last) < 10*time.Second {
		e.mu.Unlock()
		return nil
	}
	n := e.dropped
	e.dropped, e.last = 0, now
	e.mu.Unlock()
	e.log.Warn("exporting spans failed", "endpoint", e.endpoint, "spans_lost", n, "err", err)
	return nil
}
