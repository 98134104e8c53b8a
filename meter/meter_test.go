package meter_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/meter"
)

func TestNewRecordBilling(t *testing.T) {
	tests := []struct {
		name     string
		inv      gust.Invocation
		billedMs int64
		gbs      float64
		durUs    int64
	}{
		{"1µs bills the 1 ms minimum", gust.Invocation{Duration: time.Microsecond, MemoryMB: 128, Status: gust.StatusOK}, 1, 0.000125, 1},
		{"0 bills 1 ms", gust.Invocation{Duration: 0, MemoryMB: 1024, Status: gust.StatusOK}, 1, 0.001, 0},
		{"1 ms exactly", gust.Invocation{Duration: time.Millisecond, MemoryMB: 1024, Status: gust.StatusOK}, 1, 0.001, 1000},
		{"1.0001 ms rounds up", gust.Invocation{Duration: 1000100 * time.Nanosecond, MemoryMB: 128, Status: gust.StatusOK}, 2, 0.00025, 1000},
		{"128 MB x 100 ms", gust.Invocation{Duration: 100 * time.Millisecond, MemoryMB: 128, Status: gust.StatusOK}, 100, 0.0125, 100000},
		{"errors bill", gust.Invocation{Duration: 2500 * time.Microsecond, MemoryMB: 512, Status: gust.StatusError}, 3, 0.0015, 2500},
		{"timeout bills", gust.Invocation{Duration: time.Second, MemoryMB: 2048, Status: gust.StatusTimeout}, 1000, 2, 1000000},
		{"throttled bills nothing", gust.Invocation{Duration: time.Second, MemoryMB: 128, Status: gust.StatusThrottled}, 0, 0, 1000000},
		{"a call no instance ran bills nothing", gust.Invocation{Duration: time.Second, MemoryMB: 128, Status: gust.StatusError, NotRun: true}, 0, 0, 1000000},
		{"a failed start bills nothing", gust.Invocation{Duration: 3 * time.Second, MemoryMB: 128, Status: gust.StatusError, NotRun: true}, 0, 0, 3000000},
		{"negative duration is 0", gust.Invocation{Duration: -time.Second, MemoryMB: 128, Status: gust.StatusOK}, 1, 0.000125, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := meter.NewRecord(&tt.inv)
			if r.BilledMs != tt.billedMs {
				t.Errorf("billed ms = %d, want %d", r.BilledMs, tt.billedMs)
			}
			if math.Abs(r.GBSeconds-tt.gbs) > 1e-15 {
				t.Errorf("GB-s = %v, want %v", r.GBSeconds, tt.gbs)
			}
			if r.DurationUs != tt.durUs {
				t.Errorf("duration µs = %d, want %d", r.DurationUs, tt.durUs)
			}
		})
	}
	if s := meter.NewRecord(&gust.Invocation{}).Status; s != gust.StatusOK {
		t.Errorf("empty status recorded as %q, want ok", s)
	}
}

// want accumulates what the aggregates must hold, computed independently
// of the meter from the inputs.
type want struct {
	invocations, errors, throttles, cold, billedMs, durUs, mbMs int64
}

func (w *want) add(inv *gust.Invocation) {
	if inv.Status == gust.StatusThrottled {
		w.throttles++
		return
	}
	w.invocations++
	if inv.Status != gust.StatusOK {
		w.errors++
	}
	if inv.Cold {
		w.cold++
	}
	ms := int64(math.Ceil(float64(inv.Duration) / float64(time.Millisecond)))
	if ms < 1 {
		ms = 1
	}
	w.billedMs += ms
	w.durUs += int64(inv.Duration / time.Microsecond)
	w.mbMs += ms * int64(inv.MemoryMB)
}

func (w *want) check(t *testing.T, what string, c meter.Counters) {
	t.Helper()
	gbs := float64(w.mbMs) / 1024 / 1000
	if c.Invocations != w.invocations || c.Errors != w.errors || c.Throttles != w.throttles ||
		c.ColdStarts != w.cold || c.BilledMs != w.billedMs || c.DurationUs != w.durUs ||
		math.Abs(c.GBSeconds-gbs) > 1e-12 {
		t.Errorf("%s: got %+v, want invocations=%d errors=%d throttles=%d cold=%d billedMs=%d durUs=%d GB-s=%v",
			what, c, w.invocations, w.errors, w.throttles, w.cold, w.billedMs, w.durUs, gbs)
	}
}

var statuses = []string{gust.StatusOK, gust.StatusOK, gust.StatusOK, gust.StatusError, gust.StatusTimeout, gust.StatusThrottled, gust.StatusOOM}

// invocation i of a deterministic mix across two functions and two hours.
func invocation(i int, base time.Time) *gust.Invocation {
	fn := "alpha"
	mem := 128
	if i%2 == 1 {
		fn, mem = "beta", 512
	}
	return &gust.Invocation{
		ID:       fmt.Sprintf("inv-%05d", i),
		Function: fn,
		Version:  1 + i%3,
		Trigger:  "http",
		Start:    base.Add(time.Duration(i%4) * 30 * time.Minute).Add(time.Duration(i) * time.Millisecond),
		Duration: time.Duration(i%50)*time.Millisecond + time.Duration(i%7)*137*time.Microsecond,
		MemoryMB: mem,
		Cold:     i%5 == 0,
		Status:   statuses[i%len(statuses)],
	}
}

// record hands m invocations from to to-1 (see invocation), noting each.
func (w *want) record(m *meter.Meter, from, to int, base time.Time) {
	for i := from; i < to; i++ {
		inv := invocation(2*i, base)
		w.add(inv)
		m.Record(inv)
	}
}

// openMeter starts a meter on js, closed when the test ends.
func openMeter(ctx context.Context, tb testing.TB, js jetstream.JetStream) *meter.Meter {
	tb.Helper()
	m, err := meter.New(ctx, js, meter.Config{Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestUsageAfterFlush(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m := openMeter(ctx, t, js)

	base := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	wants := map[string]map[time.Time]*want{}
	totals := map[string]*want{}
	var grand want
	const n = 1000
	for i := range n {
		inv := invocation(i, base)
		m.Record(inv)
		hour := inv.Start.UTC().Truncate(time.Hour)
		if wants[inv.Function] == nil {
			wants[inv.Function] = map[time.Time]*want{}
			totals[inv.Function] = &want{}
		}
		if wants[inv.Function][hour] == nil {
			wants[inv.Function][hour] = &want{}
		}
		wants[inv.Function][hour].add(inv)
		totals[inv.Function].add(inv)
		grand.add(inv)
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	rep, err := m.Usage(ctx, "", base.Add(-time.Hour), base.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 4 {
		t.Fatalf("got %d rows, want 4 (2 functions x 2 hours): %+v", len(rep.Rows), rep.Rows)
	}
	for _, row := range rep.Rows {
		w := wants[row.Function][row.Hour]
		if w == nil {
			t.Fatalf("unexpected row %s %s", row.Function, row.Hour)
		}
		w.check(t, row.Function+" "+row.Hour.Format(time.RFC3339), row.Counters)
	}
	if rep.Rows[0].Function != "alpha" || !rep.Rows[0].Hour.Equal(base) || rep.Rows[1].Hour.Before(rep.Rows[0].Hour) {
		t.Errorf("rows not sorted by function then hour: %+v", rep.Rows)
	}
	if len(rep.Functions) != 2 {
		t.Fatalf("got %d function totals, want 2", len(rep.Functions))
	}
	for _, tot := range rep.Functions {
		totals[tot.Function].check(t, "total "+tot.Function, tot.Counters)
		w := totals[tot.Function]
		cost := float64(w.mbMs)/1024/1000*meter.DefaultPricePerGBSecond + float64(w.invocations)/1e6*meter.DefaultPricePerMillionRequests
		if math.Abs(tot.EstimatedCost-cost) > 1e-15 {
			t.Errorf("cost of %s = %v, want %v", tot.Function, tot.EstimatedCost, cost)
		}
	}
	grand.check(t, "grand total", rep.Total.Counters)
	if grand.invocations+grand.throttles != n {
		t.Fatalf("test bug: %d + %d != %d", grand.invocations, grand.throttles, n)
	}

	// One function, one hour: the filters select.
	rep, err = m.Usage(ctx, "beta", base.Add(30*time.Minute), base.Add(time.Hour+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || len(rep.Functions) != 1 || rep.Functions[0].Function != "beta" {
		t.Fatalf("beta report: %+v", rep)
	}
	rep, err = m.Usage(ctx, "beta", base.Add(2*time.Hour), base.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 0 || rep.Total.Invocations != 0 {
		t.Fatalf("empty range report: %+v", rep)
	}
	if _, err := m.Usage(ctx, "Bad.Name", base, base.Add(time.Hour)); gust.ErrorCode(err) != gust.EINVALID {
		t.Errorf("bad function name: err %v, want invalid", err)
	}
	if _, err := m.Usage(ctx, "", base, base); gust.ErrorCode(err) != gust.EINVALID {
		t.Errorf("empty range: err %v, want invalid", err)
	}
	if d := m.Dropped(); d != 0 {
		t.Errorf("dropped %d records", d)
	}
}

// A Meter closed and made again mid-stream, with the consumer deleted so
// that the stream redelivers every record from the start, must count each
// record exactly once.
func TestRedeliveryDoesNotDoubleCount(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	base := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var w want
	m1, err := meter.New(ctx, js, meter.Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	w.record(m1, 0, 300, base) // alpha only
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Records handed over just before Close are published by Close.
	w.record(m1, 300, 400, base)
	if err := m1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Forget every ack: the next consumer starts at sequence 1.
	if err := js.DeleteConsumer(ctx, meter.StreamName, meter.ConsumerName); err != nil {
		t.Fatal(err)
	}
	m2 := openMeter(ctx, t, js)
	w.record(m2, 400, 500, base)
	if err := m2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := m2.Usage(ctx, "alpha", base, base.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, "alpha after redelivery", rep.Total.Counters)

	// A plain restart: Close releases the consumer pin, so the next Meter
	// aggregates at once rather than after the pin's 30 s lapse.
	if err := m2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m3 := openMeter(ctx, t, js)
	w.record(m3, 500, 600, base)
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := m3.Flush(fctx); err != nil {
		t.Fatalf("flush after restart: %v", err)
	}
	rep, err = m3.Usage(ctx, "alpha", base, base.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, "alpha after restart", rep.Total.Counters)

	// A record after Close is dropped and counted, not a panic.
	m1.Record(invocation(0, base))
	if m1.Dropped() != 1 {
		t.Errorf("dropped after close = %d, want 1", m1.Dropped())
	}
}

// Two meters on one JetStream (two nodes) share the consumer: each record
// is aggregated once whichever node published it.
func TestTwoMetersShareAggregation(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	base := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var ms [2]*meter.Meter
	for i := range ms {
		m := openMeter(ctx, t, js)
		ms[i] = m
	}
	var w want
	for i := range 400 {
		inv := invocation(2*i, base)
		w.add(inv)
		ms[i%2].Record(inv)
	}
	for _, m := range ms {
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := ms[0].Usage(ctx, "alpha", base, base.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, "alpha from two nodes", rep.Total.Counters)
}

func TestHandler(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m, err := meter.New(ctx, js, meter.Config{Logger: quietLogger(), PricePerGBSecond: 1, PricePerMillionRequests: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	now := time.Now().UTC()
	m.Record(&gust.Invocation{ID: "a", Function: "hello", Start: now.Add(-time.Minute), Duration: 1500 * time.Microsecond, MemoryMB: 1024, Status: gust.StatusOK})
	m.Record(&gust.Invocation{ID: "b", Function: "other", Start: now.Add(-time.Minute), Duration: time.Millisecond, MemoryMB: 1024, Status: gust.StatusOK})
	m.Record(&gust.Invocation{ID: "c", Function: "hello", Start: now.Add(-48 * time.Hour), Duration: time.Millisecond, MemoryMB: 1024, Status: gust.StatusOK})

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	get := func(query string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/v1/usage" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: content type %q", query, ct)
		}
		return resp.StatusCode, body
	}

	// Default range is the last 24 hours; the handler flushes first.
	code, body := get("?function=hello")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var rep meter.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total.Invocations != 1 || rep.Total.BilledMs != 2 || len(rep.Functions) != 1 || rep.Functions[0].Function != "hello" {
		t.Fatalf("report: %s", body)
	}
	// 2 ms x 1 GB = 0.002 GB-s at price 1, plus 1 request at 1 per request.
	if math.Abs(rep.Total.EstimatedCost-1.002) > 1e-12 {
		t.Errorf("cost %v, want 1.002", rep.Total.EstimatedCost)
	}
	if time.Since(rep.Since) < 24*time.Hour-time.Minute || time.Since(rep.Since) > 24*time.Hour+time.Minute {
		t.Errorf("default since %s is not 24h ago", rep.Since)
	}

	// Durations mean "ago"; RFC 3339 works too.
	code, body = get("?since=72h")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	rep = meter.Report{}
	_ = json.Unmarshal(body, &rep)
	if rep.Total.Invocations != 3 || len(rep.Functions) != 2 {
		t.Errorf("since=72h report: %s", body)
	}
	code, body = get("?function=hello&since=" + now.Add(-49*time.Hour).Format(time.RFC3339) + "&until=" + now.Add(-47*time.Hour).Format(time.RFC3339))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	rep = meter.Report{}
	_ = json.Unmarshal(body, &rep)
	if rep.Total.Invocations != 1 || rep.Total.BilledMs != 1 {
		t.Errorf("RFC 3339 range report: %s", body)
	}

	for _, q := range []string{"?since=yesterday", "?until=nope", "?since=-1h", "?function=No_Such", "?since=1h&until=2h"} {
		code, body := get(q)
		var e struct{ Error, Code string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: %v: %s", q, err, body)
		}
		if code != http.StatusBadRequest || e.Code != gust.EINVALID || e.Error == "" {
			t.Errorf("%s: status %d body %s, want 400 invalid", q, code, body)
		}
	}
	if !strings.Contains(string(mustGet(t, srv.URL+"/v1/usage?since=yesterday")), "yesterday") {
		t.Errorf("error does not name the bad value")
	}
	resp, err := http.Post(srv.URL+"/v1/usage", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d (Allow %q), want 400 naming the allowed methods", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func mustGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	def := now.Add(-time.Hour)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", def, true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"2026-01-01T00:00:00Z", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"2026-01-01T02:00:00+02:00", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"-5m", time.Time{}, false},
		{"2026-01-01", time.Time{}, false},
	}
	for _, c := range cases {
		got, err := meter.ParseTime(c.in, now, def)
		if (err == nil) != c.ok || (c.ok && !got.Equal(c.want)) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// BenchmarkRecord measures the hot path: building a record and handing it
// to the buffer. The timer stops while the buffer is flushed every 16k
// records, so no record is dropped and publishing is not counted.
func BenchmarkRecord(b *testing.B) {
	ctx := testContext(b)
	js := startJetStream(b)
	m := openMeter(ctx, b, js)
	inv := invocation(1, time.Now())
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m.Record(inv)
		if n++; n%(16<<10) == 0 {
			b.StopTimer()
			// Each flush gets its own deadline: b.Loop runs for as long
			// as -benchtime asks, longer than one test context.
			fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := m.Flush(fctx)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	if d := m.Dropped(); d != 0 {
		b.Fatalf("dropped %d records", d)
	}
}

// BenchmarkRecordToAggregate measures end-to-end throughput: records
// published, acked and folded into aggregates.
func BenchmarkRecordToAggregate(b *testing.B) {
	ctx := testContext(b)
	js := startJetStream(b)
	m := openMeter(ctx, b, js)
	base := time.Now()
	invs := make([]*gust.Invocation, 8192)
	for i := range invs {
		invs[i] = invocation(i, base)
		// Ids as the invoker makes them: random, so they do not compress.
		var id [16]byte
		_, _ = rand.Read(id[:])
		invs[i].ID = hex.EncodeToString(id[:])
	}
	cpu0 := processCPU(b)
	n := 0
	for b.Loop() {
		m.Record(invs[n%len(invs)])
		if n++; n%(16<<10) == 0 {
			if err := m.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := m.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	// The CPU the whole process spent (meter, client and the embedded
	// NATS server) per record: on a shared machine it says more about
	// cost than wall time, which includes waiting for the CPU.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(n), "cpu-ns/record")
	if d := m.Dropped(); d != 0 {
		b.Fatalf("dropped %d records", d)
	}
}

func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A stream aggregated by the consumer of an earlier gust (whole messages,
// no summaries) carries on under the headers-only one: it starts after
// what the old consumer applied, the old consumer goes, and every record
// is counted once.
func TestOldConsumerHandsOver(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	base := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var w want
	m1, err := meter.New(ctx, js, meter.Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	w.record(m1, 0, 200, base)
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, meter.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	// The old consumer applied (acked) what is in the stream so far; the
	// new one is gone, as before an upgrade.
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	floor := info.State.LastSeq
	old, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "gust-usage-agg", AckPolicy: jetstream.AckAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := old.Fetch(int(floor), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var last jetstream.Msg
	for msg := range batch.Messages() {
		last = msg
	}
	if last == nil {
		t.Fatal("old consumer got nothing")
	}
	if err := last.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(ctx, meter.StreamName, meter.ConsumerName); err != nil {
		t.Fatal(err)
	}

	m2 := openMeter(ctx, t, js)
	w.record(m2, 200, 300, base)
	if err := m2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := s.Consumer(ctx, meter.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.CachedInfo().Config; cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || cfg.OptStartSeq != floor+1 || !cfg.HeadersOnly {
		t.Errorf("new consumer starts with %v at %d (headers only %v), want by start sequence at %d", cfg.DeliverPolicy, cfg.OptStartSeq, cfg.HeadersOnly, floor+1)
	}
	if _, err := s.Consumer(ctx, "gust-usage-agg"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("old consumer still there: %v", err)
	}
	rep, err := m2.Usage(ctx, "alpha", base, base.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, "alpha across the hand-over", rep.Total.Counters)
}

// Records without a start time go in the hour the stream stored them: the
// aggregator reads those messages whole (compressed) instead of their
// summary.
func TestRecordsWithoutStart(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m := openMeter(ctx, t, js)
	var w want
	for i := range 300 {
		inv := invocation(2*i, time.Time{})
		inv.ID = fmt.Sprintf("%032x", i) // long enough to compress
		if i%3 == 0 {
			inv.Start = time.Time{}
		}
		w.add(inv)
		m.Record(inv)
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := m.Usage(ctx, "alpha", time.Time{}.Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, "alpha", rep.Total.Counters)
	recs, err := m.Invocations(ctx, meter.HistoryQuery{Function: "alpha", Limit: 1000})
	if err != nil || len(recs) != 300 {
		t.Fatalf("history: %d records, err %v", len(recs), err)
	}
}

// BenchmarkRecordParallel is the hot path as the invoker calls it, from
// every core at once; the publisher runs and publishes meanwhile.
func BenchmarkRecordParallel(b *testing.B) {
	ctx := testContext(b)
	js := startJetStream(b)
	m := openMeter(ctx, b, js)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		inv := invocation(1, time.Now())
		for pb.Next() {
			m.Record(inv)
		}
	})
	b.StopTimer()
	if err := m.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
