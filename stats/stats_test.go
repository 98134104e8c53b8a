package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// t0 is a minute boundary, so steps of 10s and 1m align with it.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newStats() (*Stats, *clock) {
	c := &clock{t: t0}
	return New(Config{Now: c.now}), c
}

// finished records an invocation that ended at the clock's now.
func finished(s *Stats, c *clock, fn, status string, d time.Duration, cold bool) {
	s.Record(&gust.Invocation{Function: fn, Start: c.now().Add(-d), Duration: d, Status: status, Cold: cold})
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol*want }

func TestSeriesCounts(t *testing.T) {
	s, c := newStats()
	c.add(5 * time.Second) // 12:00:05
	for i := 0; i < 10; i++ {
		finished(s, c, "hello", gust.StatusOK, time.Millisecond, i == 0)
	}
	finished(s, c, "hello", gust.StatusError, time.Millisecond, false)
	finished(s, c, "hello", gust.StatusTimeout, time.Millisecond, false)
	finished(s, c, "hello", gust.StatusOOM, time.Millisecond, false)
	finished(s, c, "hello", gust.StatusThrottled, 0, false)
	finished(s, c, "other", gust.StatusOK, time.Millisecond, false)
	c.add(10 * time.Second) // 12:00:15
	finished(s, c, "hello", gust.StatusOK, time.Millisecond, false)
	c.add(2500 * time.Millisecond) // 12:00:17.5

	pts, err := s.Series("hello", time.Minute, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 6 {
		t.Fatalf("%d points, want 6", len(pts))
	}
	// The last point is [12:00:10, 12:00:20), the one now falls in.
	if !pts[5].T.Equal(t0.Add(10*time.Second)) || !pts[0].T.Equal(t0.Add(-40*time.Second)) {
		t.Fatalf("point times %v .. %v", pts[0].T, pts[5].T)
	}
	p := pts[4] // [12:00:00, 12:00:10)
	if p.Invocations != 13 || p.Errors != 3 || p.Throttles != 1 || p.ColdStarts != 1 {
		t.Fatalf("point = %+v", p)
	}
	if p.RPS != 1.3 {
		t.Fatalf("rps = %v, want 1.3", p.RPS)
	}
	if !near(p.P50Ms, 1, 0.15) || !near(p.P99Ms, 1, 0.15) {
		t.Fatalf("p50 %v p99 %v, want about 1ms", p.P50Ms, p.P99Ms)
	}
	// The partial point's rate is over the 7.5s elapsed in it.
	if last := pts[5]; last.Invocations != 1 || !near(last.RPS, 1/7.5, 0.01) {
		t.Fatalf("last point = %+v", last)
	}
	for _, p := range pts[:4] {
		if p.Invocations != 0 || p.P99Ms != 0 {
			t.Fatalf("empty point = %+v", p)
		}
	}
	// A function never seen has zeros, not an error.
	pts, err = s.Series("nobody", time.Minute, 10*time.Second)
	if err != nil || len(pts) != 6 || pts[5].Invocations != 0 {
		t.Fatalf("unknown function: %v %+v", err, pts)
	}
}

func TestQuantiles(t *testing.T) {
	for _, tc := range []struct {
		fast, slow int
		fastD      time.Duration
		slowD      time.Duration
		p50, p99   float64
	}{
		{98, 2, time.Millisecond, 100 * time.Millisecond, 1, 100},
		{100, 0, 3 * time.Microsecond, 0, 0.003, 0.003},
		{50, 50, 20 * time.Millisecond, 2 * time.Second, 20, 2000},
		{1, 0, 10 * time.Minute, 0, 600_000, 600_000},
	} {
		t.Run(fmt.Sprintf("%d×%s+%d×%s", tc.fast, tc.fastD, tc.slow, tc.slowD), func(t *testing.T) {
			s, c := newStats()
			for i := 0; i < tc.fast; i++ {
				finished(s, c, "f", gust.StatusOK, tc.fastD, false)
			}
			for i := 0; i < tc.slow; i++ {
				finished(s, c, "f", gust.StatusOK, tc.slowD, false)
			}
			c.add(time.Second)
			sums, err := s.Summaries(time.Minute)
			if err != nil || len(sums) != 1 {
				t.Fatalf("summaries %v %+v", err, sums)
			}
			got := sums[0]
			// Under 10µs all falls in the first bucket: the value is only
			// known to be below it. Above 266s the last bucket holds all.
			tol := 0.15
			if tc.fastD < histBase {
				if got.P50Ms > 0.010 || got.P99Ms > 0.010 {
					t.Fatalf("p50 %v p99 %v, want under 0.01ms", got.P50Ms, got.P99Ms)
				}
				return
			}
			if tc.fastD > 266*time.Second {
				if got.P99Ms < 266_000 {
					t.Fatalf("p99 %v, want the top bucket", got.P99Ms)
				}
				return
			}
			if !near(got.P50Ms, tc.p50, tol) || !near(got.P99Ms, tc.p99, tol) {
				t.Fatalf("p50 %v p99 %v, want about %v and %v", got.P50Ms, got.P99Ms, tc.p50, tc.p99)
			}
		})
	}
}

func TestRingForgetsAfterAnHour(t *testing.T) {
	s, c := newStats()
	finished(s, c, "f", gust.StatusOK, time.Millisecond, false)
	c.add(30 * time.Minute)
	finished(s, c, "f", gust.StatusOK, time.Millisecond, false)
	count := func() int64 {
		pts, err := s.Series("f", time.Hour, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, p := range pts {
			n += p.Invocations
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	// An hour after the first record its slot is reused by a new second.
	c.add(30*time.Minute + time.Second)
	finished(s, c, "f", gust.StatusError, time.Millisecond, false)
	if n := count(); n != 2 {
		t.Fatalf("count after wrap = %d, want 2", n)
	}
	pts, _ := s.Series("f", time.Hour, time.Hour)
	if pts[0].Errors != 1 {
		t.Fatalf("the reused slot kept old counts: %+v", pts[0])
	}
	// A record older than the ring is dropped rather than overwrite
	// newer seconds.
	s.Record(&gust.Invocation{Function: "f", Start: t0.Add(-time.Hour), Status: gust.StatusOK})
	if n := count(); n != 2 {
		t.Fatalf("count after a stale record = %d, want 2", n)
	}
}

func TestSummariesSkipIdleAndPrune(t *testing.T) {
	s, c := newStats()
	finished(s, c, "old", gust.StatusOK, time.Millisecond, false)
	c.add(2 * time.Minute)
	finished(s, c, "new", gust.StatusThrottled, 0, false)
	c.add(time.Second)
	sums, err := s.Summaries(time.Minute)
	if err != nil || len(sums) != 1 || sums[0].Function != "new" || sums[0].Throttles != 1 || sums[0].Invocations != 0 {
		t.Fatalf("summaries = %v %+v", err, sums)
	}
	// A new function after an hour of silence drops the idle rings.
	c.add(time.Hour)
	finished(s, c, "newer", gust.StatusOK, time.Millisecond, false)
	n := 0
	n = len(*s.fns.Load())
	if n != 1 {
		t.Fatalf("%d series kept, want 1", n)
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	s, c := newStats()
	inv := &gust.Invocation{Function: "f", Start: c.now(), Duration: time.Millisecond, Status: gust.StatusOK}
	s.Record(inv) // creates the series and the slot's histogram
	if n := testing.AllocsPerRun(1000, func() { s.Record(inv) }); n != 0 {
		t.Fatalf("Record allocates %v times per call", n)
	}
}

func TestConcurrentRecordAndRead(t *testing.T) {
	s, c := newStats()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				finished(s, c, fmt.Sprintf("f%d", i%3), gust.StatusOK, time.Millisecond, false)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if _, err := s.Series("f1", time.Minute, time.Second); err != nil {
				t.Error(err)
			}
			if _, err := s.Summaries(time.Minute); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	c.add(time.Second)
	sums, _ := s.Summaries(time.Minute)
	var total int64
	for _, x := range sums {
		total += x.Invocations
	}
	if total != 2000 {
		t.Fatalf("total = %d, want 2000", total)
	}
}

func TestHTTP(t *testing.T) {
	s, c := newStats()
	finished(s, c, "hello", gust.StatusOK, 2*time.Millisecond, true)
	c.add(time.Second)
	mux := http.NewServeMux()
	for p, h := range s.Routes() {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string, out any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode
	}
	var sb SeriesBody
	if code := get("/v1/functions/hello/stats?window=15m&step=10s", &sb); code != 200 || len(sb.Points) != 90 || sb.Step != "10s" {
		t.Fatalf("series: %d %d points step %q", code, len(sb.Points), sb.Step)
	}
	var total int64
	for _, p := range sb.Points {
		total += p.Invocations + p.ColdStarts
	}
	if total != 2 {
		t.Fatalf("series counts %d, want 2", total)
	}
	if code := get("/v1/functions/hello/stats", &sb); code != 200 || sb.Window != "15m0s" || sb.Step != "15s" {
		t.Fatalf("default series: %d window %q step %q", code, sb.Window, sb.Step)
	}
	var sum SummaryBody
	if code := get("/v1/stats?window=1m", &sum); code != 200 || len(sum.Functions) != 1 || sum.Functions[0].ColdStarts != 1 {
		t.Fatalf("summary: %d %+v", code, sum)
	}
	for _, bad := range []string{
		"/v1/functions/hello/stats?window=soon",
		"/v1/functions/hello/stats?window=2h",
		"/v1/functions/hello/stats?window=1m&step=500ms",
		"/v1/functions/hello/stats?window=1m&step=2m",
		"/v1/functions/hello/stats?window=1500ms",
		"/v1/functions/Hello!/stats",
		"/v1/stats?window=0s",
		"/v1/stats?window=-1m",
	} {
		var eb httperr.Body
		if code := get(bad, &eb); code != 400 || eb.Code != gust.EINVALID || eb.Error == "" {
			t.Errorf("%s: %d %+v, want 400 invalid", bad, code, eb)
		}
	}
}

// TestQuantileError checks the bound the histogram promises: a single
// duration anywhere in the measured range reads back within 13%.
func TestQuantileError(t *testing.T) {
	for d := histBase; d < 260*time.Second; d = d * 107 / 100 {
		var w wideHistogram
		var h histogram
		h.add(d)
		w.merge(&h)
		want := float64(d) / float64(time.Millisecond)
		if got := w.quantile(0.99); !near(got, want, 0.13) {
			t.Fatalf("%s reads as %vms", d, got)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	s := New(Config{})
	inv := &gust.Invocation{Function: "f", Start: time.Now(), Duration: time.Millisecond, Status: gust.StatusOK}
	s.Record(inv)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Record(inv)
		}
	})
}
