package trace

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	oteltrace "go.opentelemetry.io/otel/trace"
)

// spanContext is what W3C Trace Context carries from span to span.
type spanContext struct {
	traceID [16]byte
	spanID  [8]byte
	flags   byte // W3C trace flags: sampled (0x01) and random (0x02)
	remote  bool // came from a traceparent, not from a span of this process
	// ownHeaders marks the context of a front door's span whose requests
	// each carry a header map built for them alone (see StartGateway):
	// Acquired may write the function's traceparent into it in place.
	ownHeaders bool
	traceState string
}

const (
	flagSampled = 0x01
	flagRandom  = 0x02
)

func (sc *spanContext) valid() bool {
	return sc != nil && sc.traceID != [16]byte{} && sc.spanID != [8]byte{}
}

func (sc *spanContext) sampled() bool { return sc.flags&flagSampled != 0 }

// traceParent formats sc as a traceparent header value.
func (sc *spanContext) traceParent() string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], sc.traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], sc.spanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{sc.flags & (flagSampled | flagRandom)})
	return string(b[:])
}

// parseTraceParent reads a traceparent as OpenTelemetry's TraceContext
// propagator does: lowercase hex only, version ff refused, version 00
// without extra fields or reserved flags, ids not all zero.
func parseTraceParent(h string) (spanContext, bool) {
	var sc spanContext
	var ver, flags [1]byte
	if !hexPart(ver[:], &h, 2) || ver[0] == 0xff {
		return sc, false
	}
	if !hexPart(sc.traceID[:], &h, 32) || !hexPart(sc.spanID[:], &h, 16) || !hexPart(flags[:], &h, 2) {
		return sc, false
	}
	if ver[0] == 0 && (h != "" || flags[0] > 3) {
		return sc, false
	}
	sc.flags = flags[0] & (flagSampled | flagRandom)
	sc.remote = true
	return sc, sc.valid()
}

// hexPart decodes the next '-'-separated field of *h, which must be n
// lowercase hex digits, into dst.
func hexPart(dst []byte, h *string, n int) bool {
	part, rest, _ := strings.Cut(*h, "-")
	*h = rest
	if len(part) != n {
		return false
	}
	for i := 0; i < n; i += 2 {
		hi, ok1 := unhex(part[i])
		lo, ok2 := unhex(part[i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i/2] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// extract reads the trace context of h. An invalid tracestate is dropped
// and the traceparent kept, as W3C Trace Context asks.
func extract(h http.Header) (spanContext, bool) {
	tp := headerValue(h, HeaderTraceParent)
	if tp == "" {
		return spanContext{}, false
	}
	sc, ok := parseTraceParent(tp)
	if !ok {
		return spanContext{}, false
	}
	if raw := headerValue(h, HeaderTraceState); raw != "" {
		// Rare, and its rules are many: OpenTelemetry's parser decides.
		if ts, err := oteltrace.ParseTraceState(raw); err == nil {
			sc.traceState = ts.String()
		}
	}
	return sc, true
}

// headerValue is h.Get(key) for a canonical key, falling back to Get for
// a header map someone filled with other spellings.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return h.Get(key)
}

type ctxKey struct{}

// fromContext returns the span context in ctx, or nil.
func fromContext(ctx context.Context) *spanContext {
	sc, _ := ctx.Value(ctxKey{}).(*spanContext)
	if !sc.valid() {
		return nil
	}
	return sc
}

// spanCtx is a context holding a span context: one allocation where
// context.WithValue and a separate spanContext took two, on every traced
// call's gateway and execution spans.
type spanCtx struct {
	context.Context
	sc spanContext
}

func (c *spanCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return &c.sc
	}
	return c.Context.Value(key)
}

// withSpanContext returns ctx holding a copy of sc.
func withSpanContext(ctx context.Context, sc *spanContext) context.Context {
	return &spanCtx{Context: ctx, sc: *sc}
}

// withSpan returns ctx holding a copy of s's context: span records are
// reused once exported, and a context may outlive its span.
func withSpan(ctx context.Context, s *span) context.Context {
	return withSpanContext(ctx, &s.sc)
}

// Kinds of span, as OTLP numbers them.
const (
	kindInternal = 1
	kindServer   = 2
	kindProducer = 4
	kindConsumer = 5
)

type attrKind uint8

const (
	attrString attrKind = iota
	attrInt
	attrBool
	attrIntString // an int sent as its decimal string: formatted by the exporter, not the caller
)

type attr struct {
	key  string
	str  string
	num  int64
	kind attrKind
}

// maxAttrs is the most attributes a span of this package carries (the
// gateway's: method, route, path, status, invocation, function, version).
const maxAttrs = 8

// span is one span as recorded on the request's goroutine: a fixed-size
// value with no per-attribute allocation. The exporter turns finished
// spans into OTLP in its own goroutine, in batches, and then puts them
// back in spanPool: at two spans a call, allocating a fresh half-KB
// record each time was most of what tracing cost the garbage collector.
// Nothing may use a span after finish but the exporter; a context gets a
// copy of its spanContext (withSpan), and a handle (ServerSpan, ExecSpan)
// is ended once.
type span struct {
	sc           spanContext
	parentID     [8]byte // zero for a root span
	parentRemote bool
	name         string
	kind         int32
	start, end   int64 // Unix nanoseconds
	attrs        [maxAttrs]attr
	nattrs       uint8
	failed       bool
	statusMsg    string
	ended        bool
	t            *Tracer
}

// start makes a span named name under parent (a new trace when it is
// nil). Ids come from math/rand/v2's per-thread
// generator: no lock, no allocation.
func (t *Tracer) start(p *spanContext, name string, kind int32, at time.Time) *span {
	s := spanPool.Get().(*span)
	*s = span{name: name, kind: kind, start: at.UnixNano(), t: t}
	if p != nil {
		s.sc.traceID = p.traceID
		s.sc.traceState = p.traceState
		s.parentID = p.spanID
		s.parentRemote = p.remote
		// Parent-based sampling: a caller that did not sample its trace
		// gets no spans from gust either, but its flags pass on.
		s.sc.flags = p.flags
	} else {
		s.sc.flags = flagSampled
		for s.sc.traceID == [16]byte{} {
			putUint64(s.sc.traceID[:8], rand.Uint64())
			putUint64(s.sc.traceID[8:], rand.Uint64())
		}
	}
	for s.sc.spanID == [8]byte{} {
		putUint64(s.sc.spanID[:], rand.Uint64())
	}
	return s
}

// spanPool holds span records the exporter is done with.
var spanPool = sync.Pool{New: func() any { return new(span) }}

// recycle returns spans the exporter has sent (or dropped) to spanPool.
func recycle(spans []*span) {
	for i, s := range spans {
		*s = span{} // let its strings go
		spanPool.Put(s)
		spans[i] = nil
	}
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func (s *span) setString(key, v string) { s.add(attr{key: key, str: v, kind: attrString}) }
func (s *span) setInt(key string, v int) {
	s.add(attr{key: key, num: int64(v), kind: attrInt})
}
func (s *span) setBool(key string, v bool) {
	n := int64(0)
	if v {
		n = 1
	}
	s.add(attr{key: key, num: n, kind: attrBool})
}
func (s *span) setIntString(key string, v int) {
	s.add(attr{key: key, num: int64(v), kind: attrIntString})
}

// add sets an attribute, replacing one of the same key as OpenTelemetry
// does; past maxAttrs it is dropped (no span here comes near).
func (s *span) add(a attr) {
	for i := range s.attrs[:s.nattrs] {
		if s.attrs[i].key == a.key {
			s.attrs[i] = a
			return
		}
	}
	if int(s.nattrs) < len(s.attrs) {
		s.attrs[s.nattrs] = a
		s.nattrs++
	}
}

func (s *span) setError(code, msg string) {
	s.setString("error.type", code)
	s.failed, s.statusMsg = true, msg
}

// finish ends s at end and hands it to the exporter; a span of an
// unsampled trace is dropped here. Later calls do nothing.
func (s *span) finish(end time.Time) {
	if s.ended {
		return
	}
	s.ended = true
	s.end = end.UnixNano()
	if s.sc.sampled() {
		s.t.exp.add(s)
	}
}
