package async

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust"
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
}

// BenchmarkEnqueue is BenchmarkAccept without HTTP: the storage cost of
// an accept (status record, then the event), from 8 goroutines.
func BenchmarkEnqueue(b *testing.B) {
	h := newHarness(b, "", nil)
	benchDeploy(b, h, "noop")
	gate := make(chan struct{})
	h.cnt.mu.Lock()
	h.cnt.gate = gate
	h.cnt.mu.Unlock()
	defer close(gate)
	ctx := context.Background()
	var failed atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.a.Enqueue(ctx, &Event{Function: "noop", Body: []byte("x")}); err != nil {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d enqueues failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
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
