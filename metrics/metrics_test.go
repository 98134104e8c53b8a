package metrics_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/metrics"
)

func stats() []gust.PoolStats {
	return []gust.PoolStats{
		{Function: "hello", Version: 1, Idle: 2, Busy: 1, Starting: 0, Waiting: 0, InFlight: 1},
		{Function: "hello", Version: 2, Idle: 0, Busy: 3, Starting: 1, Waiting: 4, InFlight: 3},
		{Function: "other", Version: 7, Idle: 5},
	}
}

func record(m *metrics.Metrics) {
	invs := []gust.Invocation{
		{Function: "hello", Status: gust.StatusOK, Duration: 300 * time.Microsecond, Cold: true, QueueWait: 2 * time.Millisecond},
		{Function: "hello", Status: gust.StatusOK, Duration: 2 * time.Millisecond},
		{Function: "hello", Status: gust.StatusError, Duration: time.Millisecond},
		{Function: "hello", Status: gust.StatusThrottled, QueueWait: time.Second},
		{Function: "other", Status: gust.StatusTimeout, Duration: 30 * time.Second, Cold: true},
		{Function: "other", Status: gust.StatusOOM, Duration: time.Second},
		{Function: "other", Status: "", Duration: time.Second}, // empty means ok
	}
	for i := range invs {
		m.Record(&invs[i])
	}
}

func TestRecordAndCollect(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, stats)
	record(m)

	want := `
# HELP gust_invocations_total Finished invocations by function and status (ok, error, timeout, throttled, oom).
# TYPE gust_invocations_total counter
gust_invocations_total{function="hello",status="error"} 1
gust_invocations_total{function="hello",status="ok"} 2
gust_invocations_total{function="hello",status="oom"} 0
gust_invocations_total{function="hello",status="throttled"} 1
gust_invocations_total{function="hello",status="timeout"} 0
gust_invocations_total{function="other",status="error"} 0
gust_invocations_total{function="other",status="ok"} 1
gust_invocations_total{function="other",status="oom"} 1
gust_invocations_total{function="other",status="throttled"} 0
gust_invocations_total{function="other",status="timeout"} 1
# HELP gust_cold_starts_total Invocations that started a new instance.
# TYPE gust_cold_starts_total counter
gust_cold_starts_total{function="hello"} 1
gust_cold_starts_total{function="other"} 1
# HELP gust_throttles_total Invocations refused for lack of concurrency or capacity.
# TYPE gust_throttles_total counter
gust_throttles_total{function="hello"} 1
gust_throttles_total{function="other"} 0
# HELP gust_instances Instances on this node by function, version and state (idle, busy, starting).
# TYPE gust_instances gauge
gust_instances{function="hello",state="busy",version="1"} 1
gust_instances{function="hello",state="busy",version="2"} 3
gust_instances{function="hello",state="idle",version="1"} 2
gust_instances{function="hello",state="idle",version="2"} 0
gust_instances{function="hello",state="starting",version="1"} 0
gust_instances{function="hello",state="starting",version="2"} 1
gust_instances{function="other",state="busy",version="7"} 0
gust_instances{function="other",state="idle",version="7"} 5
gust_instances{function="other",state="starting",version="7"} 0
# HELP gust_in_flight Invocations running on this node.
# TYPE gust_in_flight gauge
gust_in_flight{function="hello"} 4
gust_in_flight{function="other"} 0
# HELP gust_queue_depth Invocations waiting for an instance on this node.
# TYPE gust_queue_depth gauge
gust_queue_depth{function="hello"} 4
gust_queue_depth{function="other"} 0
`
	err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"gust_invocations_total", "gust_cold_starts_total", "gust_throttles_total",
		"gust_instances", "gust_in_flight", "gust_queue_depth")
	if err != nil {
		t.Fatal(err)
	}

	// Histograms: throttled invocations wait but do not run.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	sums := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if h := mt.GetHistogram(); h != nil {
				key := mf.GetName() + "/" + mt.GetLabel()[0].GetValue()
				counts[key] = h.GetSampleCount()
				sums[key] = h.GetSampleSum()
			}
		}
	}
	if counts["gust_invocation_duration_seconds/hello"] != 3 || counts["gust_invocation_duration_seconds/other"] != 3 {
		t.Errorf("duration counts %v, want 3 and 3", counts)
	}
	if s := sums["gust_invocation_duration_seconds/other"]; s != 32 {
		t.Errorf("duration sum of other = %v, want 32", s)
	}
	if counts["gust_queue_wait_seconds/hello"] != 4 || sums["gust_queue_wait_seconds/hello"] != 1.002 {
		t.Errorf("queue wait of hello: count %d sum %v, want 4 and 1.002",
			counts["gust_queue_wait_seconds/hello"], sums["gust_queue_wait_seconds/hello"])
	}
}

func TestHandlerAndPromtool(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, stats)
	record(m)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, s := range []string{
		`gust_invocation_duration_seconds_bucket{function="hello",le="0.0001"} 0`,
		`gust_invocation_duration_seconds_bucket{function="other",le="30"} 3`,
		`gust_queue_depth{function="hello"} 4`,
	} {
		if !bytes.Contains(body, []byte(s)) {
			t.Errorf("/metrics lacks %s", s)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed; scripts/setup installs Debian's prometheus package")
		}
		t.Skip("promtool not installed (apt-get install prometheus); skipping the lint")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestNilStatsAndDefaultRegistry(t *testing.T) {
	m := metrics.New(nil, nil)
	m.Record(&gust.Invocation{Function: "f", Status: gust.StatusOK})
	m.Record(nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `gust_invocations_total{function="f",status="ok"} 1`) {
		t.Errorf("own registry not served:\n%s", rec.Body.String())
	}
}

func TestConcurrentRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				fn := []string{"a", "b", "c"}[(g+i)%3]
				m.Record(&gust.Invocation{Function: fn, Status: gust.StatusOK, Duration: time.Millisecond})
			}
		})
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "gust_invocations_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			n += mt.GetCounter().GetValue()
		}
	}
	if n != 2000 {
		t.Errorf("counted %v invocations, want 2000", n)
	}
}

type countingRecorder struct{ n int }

func (c *countingRecorder) Record(*gust.Invocation) { c.n++ }

func TestMulti(t *testing.T) {
	a, b := &countingRecorder{}, &countingRecorder{}
	r := metrics.Multi(a, nil, b)
	r.Record(&gust.Invocation{})
	r.Record(&gust.Invocation{})
	if a.n != 2 || b.n != 2 {
		t.Errorf("fan-out counts %d, %d; want 2, 2", a.n, b.n)
	}
	if one := metrics.Multi(nil, a); one != gust.Recorder(a) {
		t.Errorf("Multi of one recorder should be that recorder")
	}
	metrics.Multi().Record(&gust.Invocation{}) // no recorders: a no-op
}

func BenchmarkRecord(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry(), nil)
	inv := &gust.Invocation{Function: "hello", Status: gust.StatusOK, Duration: 3 * time.Millisecond, QueueWait: 50 * time.Microsecond}
	b.ReportAllocs()
	for b.Loop() {
		m.Record(inv)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry(), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		inv := &gust.Invocation{Function: "hello", Status: gust.StatusOK, Duration: 3 * time.Millisecond}
		for pb.Next() {
			m.Record(inv)
		}
	})
}
