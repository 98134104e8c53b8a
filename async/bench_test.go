package async

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/invoke"
)

// Benchmarks of the async path on real parts (embedded NATS with its file
// store in a temp dir, wazero, HTTP on 127.0.0.1). Run:
//
//	go test -run '^$' -bench . -benchtime 20000x ./async
//
// The HTTP client runs on the same cores as gust.

// BenchmarkAccept measures POST /async/NAME answered 202, each event
// stored in JetStream first. The workers are held (the first few events
// block in Invoke) so the figure is accepting alone.
func BenchmarkAccept(b *testing.B) {
	h := newHarness(b, "", nil)
	benchDeploy(b, h, "noop")
	gate := make(chan struct{})
	h.cnt.mu.Lock()
	h.cnt.gate = gate
	h.cnt.mu.Unlock()
	defer close(gate)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := h.srv.URL + "/async/noop"
	body := []byte("x")
	var failed atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Post(url, "text/plain", bytes.NewReader(body))
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d accepts failed", n, b.N)
	}
	reportAccepts(b, cpu0)
}

// BenchmarkEnqueue is BenchmarkAccept without HTTP: the storage cost of
// an accept (the event's one durable write, acknowledged), from 8
// goroutines.
func BenchmarkEnqueue(b *testing.B) {
	h := newHarness(b, "", nil)
	benchDeploy(b, h, "noop")
	gate := make(chan struct{})
	h.cnt.mu.Lock()
	h.cnt.gate = gate
	h.cnt.mu.Unlock()
	defer close(gate)
	var failed atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev := &Event{
				ID: invoke.NewID(), Function: "noop", Method: http.MethodPost, Path: "/",
				Trigger: "async", AcceptedAt: time.Now(), Body: []byte("x"), SeqSuffix: true,
			}
			if _, err := h.a.store(ev, ""); err != nil {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d enqueues failed", n, b.N)
	}
	reportAccepts(b, cpu0)
}

// BenchmarkHTTPFloor is BenchmarkAccept's HTTP alone: the same client
// posting to a handler that reads the body and answers 202 with a small
// JSON body, storing nothing. It is the ceiling an accept over HTTP can
// reach on this machine, with its client on the same cores.
func BenchmarkHTTPFloor(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		writeAccepted(w, &Accepted{ID: invoke.NewID(), Status: StatusQueued})
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := []byte("x")
	var failed atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Post(srv.URL+"/async/noop", "text/plain", bytes.NewReader(body))
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d posts failed", n, b.N)
	}
	reportAccepts(b, cpu0)
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportAccepts reports accepts per second of wall time and the CPU time
// one accept took (server, NATS and client together): on a machine shared
// with other work the first follows the neighbours' load, the second much
// less; GOMAXPROCS divided by it is the rate the cores could reach.
func reportAccepts(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
	perOp := (cpuTime() - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(perOp.Nanoseconds())/1000, "cpu-µs/op")
}

// BenchmarkEndToEnd accepts b.N invocations of a no-op function over HTTP
// and waits until every one has succeeded: completed per second, and the
// delay from accept to start (p50, p99).
func BenchmarkEndToEnd(b *testing.B) {
	h := newHarness(b, "", func(c *Config) { c.Workers = 8 })
	benchDeploy(b, h, "noop")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := h.srv.URL + "/async/noop"
	ids := make([]string, b.N)
	var next, failed atomic.Int64
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			resp, err := hc.Post(url, "text/plain", bytes.NewReader([]byte("x")))
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				failed.Add(1)
				continue
			}
			ids[i] = resp.Header.Get(HeaderInvocationID)
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d accepts failed", n, b.N)
	}
	// Done when the workers have run every one; counted by the invoker
	// wrapper, so polling costs the server nothing.
	deadline := time.Now().Add(5 * time.Minute)
	for h.cnt.triggered("async") < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d ran", h.cnt.triggered("async"), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	// The last status writes follow the invocations by a moment.
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	for _, id := range ids {
		var s *Status
		for range 1000 {
			var err error
			if s, err = h.a.Status(ctx, id); err == nil && s.Final() {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if s == nil || s.Status != StatusSucceeded || s.StartedAt == nil {
			b.Fatalf("invocation %s: %+v", id, s)
		}
		lat = append(lat, s.StartedAt.Sub(s.AcceptedAt))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "completed/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-accept-to-start-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-accept-to-start-ms")
}

func benchDeploy(b *testing.B, h *harness, name string) {
	b.Helper()
	code := h.guest()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := h.reg.Deploy(ctx, name, gust.Spec{MaxConcurrency: 16}, "reactor", code); err != nil {
		b.Fatal(err)
	}
}
