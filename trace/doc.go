// Package trace is gust's distributed tracing: it accepts a W3C Trace
// Context (traceparent, tracestate) from callers, records the spans of an
// invocation, exports them over OTLP/HTTP (protobuf), and hands the
// function a traceparent so its own spans join the caller's trace.
//
// It records and exports spans itself rather than through OpenTelemetry's
// SDK, which cost every span a dozen allocations and a goroutine wake: a
// span is a fixed-size struct filled on the request's goroutine, queued
// under a mutex, and written as OTLP protobuf by the exporter's goroutine
// once per batch. What reaches a collector is what the SDK's OTLP exporter
// sent: the same resource, scope, span kinds, attributes, status and
// flags (see export_test.go).
//
// The spans of one synchronous invocation:
//
//	GET /fn/{name}        server span of the gateway: method, route, status,
//	│                      function, version, invocation id
//	├── queue wait        from asking the pool for an instance until one was
//	│                      free; only when the call had to wait
//	├── cold start        only when this call started its instance
//	└── execution         the call on the instance; the function's traceparent
//	                       names this span as its parent
//
// Propagation without an endpoint: a Tracer built with no Endpoint is a
// no-op that costs one nil check per call. It records nothing and generates
// no traceparent; a traceparent the caller sent reaches the function
// unchanged, as W3C Trace Context asks of an intermediary that does not
// trace. Generating ids nobody can look up would cost every call and help
// nobody; a function that needs a correlation id has X-Gust-Invocation-Id.
// With an endpoint, every invocation is traced (a caller's sampled flag is
// honoured) and the function always gets a traceparent.
//
// Events that do not come through the gateway (async, cron, queues) carry
// their trace context in the request's headers: Inject writes it, and the
// invoker parents its spans on the traceparent it finds there when its
// context has no span. The spans of an async invocation:
//
//	POST /async/{name}    server span of the accept (202); a cron tick's
//	│                      "cron tick" producer span stands in its place
//	├── queue wait        from the accept until a worker took the event
//	│                      (Dequeued), then the invoker's own spans:
//	├── cold start
//	└── execution
//
// It must not set OpenTelemetry's global tracer provider, propagator or
// error handler (several nodes share a process in tests), must not block an
// invocation on the exporter (spans are batched and dropped, counted and
// logged, when the queue is full), must not wake a goroutine per span, and
// must not know about drivers, pools or the registry.
package trace
