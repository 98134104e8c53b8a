package trace

import (
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func boolean(k string, v bool) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}}
}

// The hand-written encoder writes what OpenTelemetry's OTLP exporter
// wrote for the same spans: the resource sorted by key, one scope named
// for gust, each span's ids, trace state, kind, times, attributes in the
// order set, a status (empty unless an error) and flags with the
// parent-is-remote bits.
func TestEncodeMatchesOTLP(t *testing.T) {
	e := &exporter{}
	e.resource = appendStringKV(e.resource, 1, "service.name", "gust")
	e.resource = appendStringKV(e.resource, 1, "service.version", "1.2.3")
	e.scope = appendScope(nil)

	start := time.Unix(1_700_000_000, 123)
	root := &span{name: "GET /fn/{name}", kind: kindServer, start: start.UnixNano(), end: start.Add(time.Millisecond).UnixNano()}
	root.sc = spanContext{traceID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, spanID: [8]byte{9, 9, 9, 9, 9, 9, 9, 9}, flags: flagSampled | flagRandom, traceState: "a=1,b=2"}
	root.parentID = [8]byte{7, 7, 7, 7, 7, 7, 7, 7}
	root.parentRemote = true
	root.setString("http.request.method", "GET")
	root.setInt("http.response.status_code", 503)
	root.setIntString("faas.version", 42)
	root.setBool("faas.coldstart", true)
	root.setBool("other", false)
	root.setInt("negative", -5)
	root.failed, root.statusMsg = true, "Service Unavailable"

	child := &span{name: SpanExecution, kind: kindInternal, start: start.UnixNano(), end: start.UnixNano()}
	child.sc = spanContext{traceID: root.sc.traceID, spanID: [8]byte{1}, flags: flagSampled}
	child.parentID = root.sc.spanID
	child.setError("ETIMEOUT", "")

	lone := &span{name: "cron tick", kind: kindProducer, start: -5, end: 10}
	lone.sc = spanContext{traceID: [16]byte{5}, spanID: [8]byte{5}, flags: flagSampled}

	var got coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(e.encode(nil, []*span{root, child, lone}), &got); err != nil {
		t.Fatal(err)
	}
	want := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "gust"), str("service.version", "1.2.3")}},
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: scopeName},
			Spans: []*tracepb.Span{{
				TraceId: root.sc.traceID[:], SpanId: root.sc.spanID[:], TraceState: "a=1,b=2", ParentSpanId: root.parentID[:],
				Name: "GET /fn/{name}", Kind: tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(time.Millisecond).UnixNano()),
				Attributes: []*commonpb.KeyValue{str("http.request.method", "GET"), num("http.response.status_code", 503),
					str("faas.version", "42"), boolean("faas.coldstart", true), boolean("other", false), num("negative", -5)},
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "Service Unavailable"},
				Flags:  0x03 | 0x100 | 0x200,
			}, {
				TraceId: root.sc.traceID[:], SpanId: child.sc.spanID[:], ParentSpanId: root.sc.spanID[:],
				Name: SpanExecution, Kind: tracepb.Span_SPAN_KIND_INTERNAL,
				StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.UnixNano()),
				Attributes: []*commonpb.KeyValue{str("error.type", "ETIMEOUT")},
				Status:     &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR},
				Flags:      0x01 | 0x100,
			}, {
				TraceId: lone.sc.traceID[:], SpanId: lone.sc.spanID[:],
				Name: "cron tick", Kind: tracepb.Span_SPAN_KIND_PRODUCER,
				StartTimeUnixNano: 0, EndTimeUnixNano: 10,
				Status: &tracepb.Status{},
				Flags:  0x01 | 0x100,
			}},
		}},
	}}}
	if diff := cmpProto(want, &got); diff != "" {
		t.Errorf("encoded export differs (-want +got):\n%s", diff)
	}
}

func cmpProto(want, got proto.Message) string {
	if proto.Equal(want, got) {
		return ""
	}
	return "want:\n" + prototext.Format(want) + "\ngot:\n" + prototext.Format(got)
}

func TestEnvHeaders(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%20ecret, x-tenant = a ,bad,=x")
	h := envHeaders()
	if len(h) != 2 || h["api-key"] != "s ecret" || h["x-tenant"] != "a" {
		t.Errorf("headers = %v", h)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "only=traces")
	if h := envHeaders(); len(h) != 1 || h["only"] != "traces" {
		t.Errorf("traces headers = %v", h)
	}
}
