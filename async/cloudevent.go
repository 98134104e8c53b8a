package async

import (
	"context"
	"net/http"
	"time"

	"github.com/gustfaas/gust/trace"
)

// CloudEvents 1.0 types of gust's event sources.
const (
	CETypeCron   = "dev.gust.cron"
	CETypeNATS   = "dev.gust.nats.message"
	CETypeStream = "dev.gust.stream.message"
)

// ceHeader returns the headers of a CloudEvent in HTTP binary mode: the
// attributes as ce- headers, the data as the body. Header names are
// lowercase on the wire, as the binding's examples write them; Go
// canonicalizes them for functions that read them from an http.Header.
func ceHeader(typ, source, id, subject, contentType string, t time.Time) http.Header {
	h := http.Header{}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-type", typ)
	h.Set("ce-source", source)
	h.Set("ce-id", id)
	h.Set("ce-time", t.UTC().Format(time.RFC3339Nano))
	if subject != "" {
		h.Set("ce-subject", subject)
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return h
}

// CloudEvents distributed-tracing extension attributes, in binary mode.
const (
	ceTraceParent = "ce-traceparent"
	ceTraceState  = "ce-tracestate"
)

// setCETrace writes the trace context of the span in ctx (the accept's,
// or a cron tick's) to h as the CloudEvents traceparent extension: the
// event says which trace it belongs to, while the function's own
// traceparent header names the span that calls it. Nothing without a span.
func setCETrace(ctx context.Context, h http.Header) {
	tp, ts := trace.TraceParent(ctx)
	if tp == "" {
		return
	}
	h.Set(ceTraceParent, tp)
	if ts != "" {
		h.Set(ceTraceState, ts)
	} else {
		h.Del(ceTraceState)
	}
}

// traceHeader returns the header holding ev's trace context: the
// CloudEvents extension of an event, else the HTTP-shaped request's own
// traceparent.
func traceHeader(h http.Header) http.Header {
	tp := h.Get(ceTraceParent)
	if tp == "" {
		return h
	}
	out := http.Header{}
	out.Set(trace.HeaderTraceParent, tp)
	if ts := h.Get(ceTraceState); ts != "" {
		out.Set(trace.HeaderTraceState, ts)
	}
	return out
}
