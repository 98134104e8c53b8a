// Package tracetest is an OTLP/HTTP trace receiver for tests: an httptest
// server on 127.0.0.1 that accepts POST /v1/traces (protobuf, optionally
// gzip) and keeps the spans it was sent, so a test can assert what gust
// exported over the wire.
//
// It must not be used outside tests: it keeps every span in memory.
package tracetest

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Receiver is a running OTLP/HTTP trace receiver.
type Receiver struct {
	srv     *httptest.Server
	discard bool // drop spans after decoding them, for benchmarks

	mu       sync.Mutex
	spans    []*tracepb.Span
	resource map[string]string
	posts    int
	bad      int
	received int
}

// New starts a receiver that keeps spans; it stops when the test ends.
func New(t testing.TB) *Receiver { return start(t, false) }

// NewDiscarding starts a receiver for benchmarks: it checks that each
// export is well-formed protobuf down to the spans, keeps the resource and
// counts the spans, but builds no Go value per span and keeps none. A
// collector runs in another process; decoding every span into Go values
// here made the benchmark's process pay a collector's cost, which was
// larger than gust's own tracing cost. Spans returns nothing.
func NewDiscarding(t testing.TB) *Receiver { return start(t, true) }

func start(t testing.TB, discard bool) *Receiver {
	r := &Receiver{discard: discard, resource: map[string]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the receiver's base URL ("http://127.0.0.1:PORT"), as
// --otlp-endpoint takes it.
func (r *Receiver) URL() string { return r.srv.URL }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		r.count(&r.bad)
		http.Error(w, "want POST /v1/traces", http.StatusNotFound)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, 64<<20)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			r.count(&r.bad)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 && req.ContentLength <= 64<<20 {
		buf.Grow(int(req.ContentLength) + bytes.MinRead) // not grown by doubling
	}
	_, err := buf.ReadFrom(body)
	b := buf.Bytes()
	var msg coltracepb.ExportTraceServiceRequest
	n := 0
	if err == nil {
		if r.discard {
			n, err = walkExport(b, &msg)
		} else {
			err = proto.Unmarshal(b, &msg)
		}
	}
	if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
		r.count(&r.bad)
		http.Error(w, "want an application/x-protobuf ExportTraceServiceRequest", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.posts++
	r.received += n
	for _, rs := range msg.ResourceSpans {
		for _, kv := range rs.GetResource().GetAttributes() {
			r.resource[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			r.received += len(ss.Spans)
			r.spans = append(r.spans, ss.Spans...)
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *Receiver) count(n *int) {
	r.mu.Lock()
	*n++
	r.mu.Unlock()
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

// Resource returns the string attributes of the resources spans came
// with (service.name, ...).
func (r *Receiver) Resource() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.resource))
	for k, v := range r.resource {
		out[k] = v
	}
	return out
}

// Received returns how many spans arrived in well-formed exports.
func (r *Receiver) Received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}

// Posts returns how many well-formed exports arrived and how many
// requests were refused as malformed.
func (r *Receiver) Posts() (ok, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts, r.bad
}

// Attr returns the value of a span attribute as a string (ints and bools
// formatted), and whether it was set.
func Attr(s *tracepb.Span, key string) (string, bool) {
	for _, kv := range s.Attributes {
		if kv.Key != key {
			continue
		}
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue, true
		case *commonpb.AnyValue_IntValue:
			return strconv.FormatInt(v.IntValue, 10), true
		case *commonpb.AnyValue_BoolValue:
			return strconv.FormatBool(v.BoolValue), true
		case *commonpb.AnyValue_DoubleValue:
			return strconv.FormatFloat(v.DoubleValue, 'g', -1, 64), true
		default:
			return kv.GetValue().String(), true
		}
	}
	return "", false
}

// TraceID returns the span's trace id as the lowercase hex of traceparent.
func TraceID(s *tracepb.Span) string { return hex.EncodeToString(s.TraceId) }

// SpanID returns the span's id in hex.
func SpanID(s *tracepb.Span) string { return hex.EncodeToString(s.SpanId) }

// ParentID returns the parent span's id in hex ("" for a root span).
func ParentID(s *tracepb.Span) string { return hex.EncodeToString(s.ParentSpanId) }

// ByName returns the received spans named name.
func ByName(spans []*tracepb.Span, name string) []*tracepb.Span {
	var out []*tracepb.Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// walkExport checks that b is a well-formed ExportTraceServiceRequest down
// to each span's fields and counts the spans. Resources are decoded into
// msg (with no scope spans); spans are not.
func walkExport(b []byte, msg *coltracepb.ExportTraceServiceRequest) (int, error) {
	spans := 0
	err := walk(b, func(f protowire.Number, rs []byte) error {
		if f != 1 { // resource_spans
			return nil
		}
		out := &tracepb.ResourceSpans{}
		msg.ResourceSpans = append(msg.ResourceSpans, out)
		return walk(rs, func(f protowire.Number, v []byte) error {
			switch f {
			case 1: // resource
				out.Resource = &resourcepb.Resource{}
				return proto.Unmarshal(v, out.Resource)
			case 2: // scope_spans
				return walk(v, func(f protowire.Number, v []byte) error {
					if f != 2 { // spans
						return nil
					}
					spans++
					return walk(v, func(protowire.Number, []byte) error { return nil })
				})
			}
			return nil
		})
	})
	return spans, err
}

// walk calls fn with each length-delimited field of the message b and
// checks the others are well-formed.
func walk(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := fn(num, v); err != nil {
				return err
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}
