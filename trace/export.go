package trace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// scopeName is the instrumentation scope of every span gust exports.
const scopeName = "github.com/gustfaas/gust"

const (
	// exportTimeout bounds one POST, as OTLP exporters default to.
	exportTimeout = 10 * time.Second
	// retryFor bounds the retries of one batch a collector refused as
	// busy (429, 502, 503, 504) or could not be reached for; spans ended
	// meanwhile wait in the buffer, up to maxQueuedSpans.
	retryFor = 10 * time.Second
	// failureReportEvery bounds how often failed exports are logged: a
	// collector that is down must not flood gust's log.
	failureReportEvery = 10 * time.Second
)

// exporter buffers finished spans and posts them as OTLP/HTTP protobuf.
//
// Ending a span costs an append under mu: its goroutine wakes the
// exporter's only when a full batch has gathered, never per span. The
// exporter's goroutine posts what is buffered every BatchTimeout or on
// that wake; flush and shutdown post at once.
type exporter struct {
	endpoint string
	headers  map[string]string // from OTEL_EXPORTER_OTLP_(TRACES_)HEADERS
	timeout  time.Duration
	log      *slog.Logger
	client   *http.Client
	// header is the encoded Resource and InstrumentationScope, the same
	// for every export.
	resource []byte
	scope    []byte

	mu      sync.Mutex
	buf     []*span
	closed  bool
	dropped int // spans that found the buffer full, not yet reported

	kick chan struct{} // cap 1: a batch has gathered
	stop chan struct{}
	done chan struct{}

	// sendMu serializes exports, so a flush returns after every span
	// ended before it was posted, including a batch the loop was sending.
	sendMu   sync.Mutex
	spare    []*span // the buffer the last export emptied, for reuse
	body     []byte  // an export's request body, reused
	scratch  []byte  // one span's encoding, reused
	lost     int     // spans in exports that failed, not yet reported
	lastErr  error
	reported time.Time
}

func newExporter(cfg Config, endpoint string) *exporter {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	e := &exporter{
		endpoint: endpoint,
		headers:  envHeaders(),
		timeout:  cfg.BatchTimeout,
		log:      cfg.Logger,
		client:   &http.Client{Transport: tr, Timeout: exportTimeout},
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	// Resource attributes sorted by key, as OpenTelemetry's resource
	// sends them.
	e.resource = appendStringKV(e.resource, 1, "service.name", cfg.ServiceName)
	if cfg.ServiceVersion != "" {
		e.resource = appendStringKV(e.resource, 1, "service.version", cfg.ServiceVersion)
	}
	e.scope = appendScope(nil)
	go e.loop()
	return e
}

// add queues a finished span; past maxQueuedSpans it is dropped and
// counted.
func (e *exporter) add(s *span) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return // not recycled: a closed tracer's spans are few
	}
	if len(e.buf) >= maxQueuedSpans {
		e.dropped++
		e.mu.Unlock()
		return
	}
	e.buf = append(e.buf, s)
	full := len(e.buf) == maxBatchSpans
	e.mu.Unlock()
	if full {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

func (e *exporter) loop() {
	defer close(e.done)
	tick := time.NewTicker(e.timeout)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-e.kick:
		case <-e.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), retryFor+exportTimeout)
		_ = e.export(ctx)
		cancel()
	}
}

// flush posts every span ended so far.
func (e *exporter) flush(ctx context.Context) error {
	return e.export(ctx)
}

// shutdown stops the loop, drops spans ended from now on and posts the
// rest.
func (e *exporter) shutdown(ctx context.Context) error {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	e.mu.Unlock()
	if already {
		return nil
	}
	close(e.stop)
	select {
	case <-e.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := e.export(ctx)
	e.client.CloseIdleConnections()
	return err
}

// export posts the buffered spans in batches of maxBatchSpans. A failed
// batch is counted and logged, not returned; the error is ctx's when it
// ended first.
func (e *exporter) export(ctx context.Context) error {
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	e.mu.Lock()
	spans := e.buf
	e.buf, e.spare = e.spare[:0], nil
	dropped := e.dropped
	e.dropped = 0
	e.mu.Unlock()

	all := spans
	var err error
	for len(spans) > 0 && err == nil {
		n := min(len(spans), maxBatchSpans)
		e.body = e.encode(e.body[:0], spans[:n])
		if err = e.post(ctx, e.body); err != nil {
			e.lastErr = err
			e.lost += len(spans)
		}
		recycle(spans[:n])
		spans = spans[n:]
	}
	recycle(spans)
	if cap(all) <= 2*maxBatchSpans {
		e.spare = all[:0] // a burst's larger buffer is not kept for ever
	}
	e.report(dropped)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// report logs spans lost since the last report, once per
// failureReportEvery at most.
func (e *exporter) report(dropped int) {
	e.lost += dropped
	if e.lost == 0 || time.Since(e.reported) < failureReportEvery {
		return
	}
	msg := "exporting spans failed"
	args := []any{"endpoint", e.endpoint, "spans_lost", e.lost}
	if e.lastErr != nil {
		args = append(args, "err", e.lastErr)
	} else {
		msg = "spans dropped: the export queue was full"
	}
	e.log.Warn(msg, args...)
	e.lost, e.lastErr, e.reported = 0, nil, time.Now()
}

// errRetryable marks a failure worth another attempt.
type errRetryable struct {
	err   error
	after time.Duration // the collector's Retry-After, if it sent one
}

func (e *errRetryable) Error() string { return e.err.Error() }
func (e *errRetryable) Unwrap() error { return e.err }

// post sends one export, retrying a busy or unreachable collector with
// backoff for up to retryFor.
func (e *exporter) post(ctx context.Context, body []byte) error {
	deadline := time.Now().Add(retryFor)
	wait := 250 * time.Millisecond
	for {
		err := e.postOnce(ctx, body)
		var re *errRetryable
		if err == nil || !errors.As(err, &re) {
			return err
		}
		d := max(wait, re.after)
		if time.Now().Add(d).After(deadline) {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait *= 2
	}
}

func (e *exporter) postOnce(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the OTLP export to %s: %w", e.endpoint, err)
	}
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &errRetryable{err: fmt.Errorf("posting spans to %s: %w", e.endpoint, err)}
	}
	// Drain a little so the connection is reused; a collector's answer
	// (a partial-success notice at most) is not needed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("posting spans to %s: %s", e.endpoint, resp.Status)
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		var after time.Duration
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return &errRetryable{err: err, after: after}
	}
	return err
}

// envHeaders reads the headers OpenTelemetry's exporters add to each
// export (an API key for a hosted collector, say) from
// OTEL_EXPORTER_OTLP_TRACES_HEADERS or else OTEL_EXPORTER_OTLP_HEADERS:
// "key=value,key2=value2", values URL-encoded. Malformed pairs are
// skipped, as OpenTelemetry's exporters skip them.
func envHeaders() map[string]string {
	raw := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
	if raw == "" {
		raw = os.Getenv("OTEL_EXPORTER_OTLP_HEADERS")
	}
	if raw == "" {
		return nil
	}
	h := map[string]string{}
	for _, pair := range strings.Split(raw, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		if dv, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			h[k] = dv
		}
	}
	return h
}

// OTLP protobuf field numbers (opentelemetry/proto, trace/v1, common/v1,
// resource/v1, collector/trace/v1).
const (
	fExportResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	fResourceSpansResource = 1
	fResourceSpansScope    = 2 // scope_spans

	fScopeSpansScope = 1
	fScopeSpansSpans = 2

	fSpanTraceID    = 1
	fSpanSpanID     = 2
	fSpanTraceState = 3
	fSpanParentID   = 4
	fSpanName       = 5
	fSpanKind       = 6
	fSpanStart      = 7
	fSpanEnd        = 8
	fSpanAttributes = 9
	fSpanStatus     = 15
	fSpanFlags      = 16

	fStatusMessage = 2
	fStatusCode    = 3
	statusError    = 2

	fKVKey   = 1
	fKVValue = 2

	fAnyString = 1
	fAnyBool   = 2
	fAnyInt    = 3

	// SpanFlags: the low byte is the W3C trace flags.
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// encode appends the ExportTraceServiceRequest of spans to b: one
// ResourceSpans with one ScopeSpans, as OpenTelemetry's exporter sends
// spans of one provider and tracer.
func (e *exporter) encode(b []byte, spans []*span) []byte {
	// The spans go first into scratch: the enclosing messages' lengths
	// are only known once they are written.
	e.scratch = e.scratch[:0]
	for _, s := range spans {
		e.scratch = appendSpan(e.scratch, s)
	}
	scopeLen := sizeBytes(fScopeSpansScope, len(e.scope)) + len(e.scratch)
	rsLen := sizeBytes(fResourceSpansResource, len(e.resource)) + sizeBytes(fResourceSpansScope, scopeLen)

	b = protowire.AppendTag(b, fExportResourceSpans, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(rsLen))
	b = protowire.AppendTag(b, fResourceSpansResource, protowire.BytesType)
	b = protowire.AppendBytes(b, e.resource)
	b = protowire.AppendTag(b, fResourceSpansScope, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(scopeLen))
	b = protowire.AppendTag(b, fScopeSpansScope, protowire.BytesType)
	b = protowire.AppendBytes(b, e.scope)
	return append(b, e.scratch...)
}

// sizeBytes is the encoded size of a length-delimited field of n bytes.
func sizeBytes(field protowire.Number, n int) int {
	return protowire.SizeTag(field) + protowire.SizeBytes(n)
}

// appendSpan appends s as a length-delimited ScopeSpans.spans entry. The
// span's own length is computed first, so nothing is copied twice; each
// attribute's sizes are worked out once, for both.
func appendSpan(b []byte, s *span) []byte {
	var sz spanSizes
	n := sz.of(s)
	b = protowire.AppendTag(b, fScopeSpansSpans, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))

	b = protowire.AppendTag(b, fSpanTraceID, protowire.BytesType)
	b = protowire.AppendBytes(b, s.sc.traceID[:])
	b = protowire.AppendTag(b, fSpanSpanID, protowire.BytesType)
	b = protowire.AppendBytes(b, s.sc.spanID[:])
	if s.sc.traceState != "" {
		b = protowire.AppendTag(b, fSpanTraceState, protowire.BytesType)
		b = protowire.AppendString(b, s.sc.traceState)
	}
	if s.parentID != [8]byte{} {
		b = protowire.AppendTag(b, fSpanParentID, protowire.BytesType)
		b = protowire.AppendBytes(b, s.parentID[:])
	}
	b = protowire.AppendTag(b, fSpanName, protowire.BytesType)
	b = protowire.AppendString(b, s.name)
	b = protowire.AppendTag(b, fSpanKind, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(s.kind))
	b = protowire.AppendTag(b, fSpanStart, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(max(0, s.start)))
	b = protowire.AppendTag(b, fSpanEnd, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(max(0, s.end)))
	for i := range s.attrs[:s.nattrs] {
		a := &s.attrs[i]
		b = protowire.AppendTag(b, fSpanAttributes, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sz.kv[i]))
		b = protowire.AppendTag(b, fKVKey, protowire.BytesType)
		b = protowire.AppendString(b, a.key)
		b = protowire.AppendTag(b, fKVValue, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sz.value[i]))
		b = appendValue(b, a, sz.num[i][:sz.numLen[i]])
	}
	b = protowire.AppendTag(b, fSpanStatus, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(statusSize(s)))
	if s.failed {
		if s.statusMsg != "" {
			b = protowire.AppendTag(b, fStatusMessage, protowire.BytesType)
			b = protowire.AppendString(b, s.statusMsg)
		}
		b = protowire.AppendTag(b, fStatusCode, protowire.VarintType)
		b = protowire.AppendVarint(b, statusError)
	}
	b = protowire.AppendTag(b, fSpanFlags, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, spanFlags(s))
}

// spanSizes holds the encoded sizes of one span's attributes (KeyValue
// and AnyValue) and the decimal text of its int-as-string values.
type spanSizes struct {
	kv, value [maxAttrs]int
	num       [maxAttrs][20]byte
	numLen    [maxAttrs]uint8
}

// of fills sz for s and returns s's encoded size.
func (sz *spanSizes) of(s *span) int {
	n := sizeBytes(fSpanTraceID, 16) + sizeBytes(fSpanSpanID, 8)
	if s.sc.traceState != "" {
		n += sizeBytes(fSpanTraceState, len(s.sc.traceState))
	}
	if s.parentID != [8]byte{} {
		n += sizeBytes(fSpanParentID, 8)
	}
	n += sizeBytes(fSpanName, len(s.name))
	n += protowire.SizeTag(fSpanKind) + protowire.SizeVarint(uint64(s.kind))
	n += 2 * (protowire.SizeTag(fSpanStart) + protowire.SizeFixed64())
	for i := range s.attrs[:s.nattrs] {
		a := &s.attrs[i]
		if a.kind == attrIntString {
			sz.numLen[i] = uint8(len(strconv.AppendInt(sz.num[i][:0], a.num, 10)))
		}
		sz.value[i] = valueSize(a, sz.num[i][:sz.numLen[i]])
		sz.kv[i] = sizeBytes(fKVKey, len(a.key)) + sizeBytes(fKVValue, sz.value[i])
		n += sizeBytes(fSpanAttributes, sz.kv[i])
	}
	n += sizeBytes(fSpanStatus, statusSize(s))
	n += protowire.SizeTag(fSpanFlags) + protowire.SizeFixed32()
	return n
}

func spanFlags(s *span) uint32 {
	f := uint32(s.sc.flags) | flagHasIsRemote
	if s.parentRemote {
		f |= flagIsRemote
	}
	return f
}

func statusSize(s *span) int {
	if !s.failed {
		return 0
	}
	n := protowire.SizeTag(fStatusCode) + protowire.SizeVarint(statusError)
	if s.statusMsg != "" {
		n += sizeBytes(fStatusMessage, len(s.statusMsg))
	}
	return n
}

// valueSize is the size of a's AnyValue; num is the decimal text of an
// int sent as a string.
func valueSize(a *attr, num []byte) int {
	switch a.kind {
	case attrInt:
		return protowire.SizeTag(fAnyInt) + protowire.SizeVarint(uint64(a.num))
	case attrBool:
		return protowire.SizeTag(fAnyBool) + 1
	case attrIntString:
		return sizeBytes(fAnyString, len(num))
	default:
		return sizeBytes(fAnyString, len(a.str))
	}
}

// appendValue appends the fields of a's AnyValue (its length is the
// caller's to write); num as for valueSize.
func appendValue(b []byte, a *attr, num []byte) []byte {
	switch a.kind {
	case attrInt:
		b = protowire.AppendTag(b, fAnyInt, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(a.num))
	case attrBool:
		b = protowire.AppendTag(b, fAnyBool, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(a.num))
	case attrIntString:
		b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
		return protowire.AppendBytes(b, num)
	default:
		b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
		return protowire.AppendString(b, a.str)
	}
}

// appendScope appends the InstrumentationScope of gust's spans.
func appendScope(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType) // name
	return protowire.AppendString(b, scopeName)
}

// appendStringKV appends a KeyValue with a string value as field f.
func appendStringKV(b []byte, f protowire.Number, key, value string) []byte {
	a := attr{key: key, str: value}
	vs := valueSize(&a, nil)
	b = protowire.AppendTag(b, f, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeBytes(fKVKey, len(key))+sizeBytes(fKVValue, vs)))
	b = protowire.AppendTag(b, fKVKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fKVValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(vs))
	return appendValue(b, &a, nil)
}
