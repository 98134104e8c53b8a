package process

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// BenchmarkColdStart measures NewInstance up to readiness (sandbox,
// cgroup, process start, interpreter start, handler import) and the first
// invocation, then Close. The python3 and nodejs cases start an
// interpreter; their -prewarmed twins specialize a pre-warmed worker,
// refilled between iterations with the timer stopped.
func BenchmarkColdStart(b *testing.B) {
	t := &testing.T{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cold, err := New(Config{WorkDir: b.TempDir(), Logger: quiet, Prewarm: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer cold.Close(context.Background())
	warm, err := New(Config{WorkDir: b.TempDir(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer warm.Close(context.Background())
	cases := []struct {
		name string
		spec gust.Spec
		code func() []byte
	}{
		{"go-http", gust.Spec{Runtime: gust.RuntimeProcess}, func() []byte { return httpFnB(b) }},
		{"go-lambda", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolLambda}, func() []byte {
			return makeZipB(b, zipEntry{name: "bootstrap", mode: 0o755, data: goBuild(t, "../examples/lambda-go", ".")})
		}},
		{"python3", gust.Spec{Runtime: gust.RuntimePython3, Handler: "handler.handler"}, func() []byte { return zipDirB(b, "../examples/python-hello") }},
		{"nodejs", gust.Spec{Runtime: gust.RuntimeNodejs, Handler: "index.handler"}, func() []byte { return zipDirB(b, "../examples/node-hello") }},
		{"python3-prewarmed", gust.Spec{Runtime: gust.RuntimePython3, Handler: "handler.handler"}, func() []byte { return zipDirB(b, "../examples/python-hello") }},
		{"nodejs-prewarmed", gust.Spec{Runtime: gust.RuntimeNodejs, Handler: "index.handler"}, func() []byte { return zipDirB(b, "../examples/node-hello") }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			d, prewarmed := cold, strings.HasSuffix(tc.name, "-prewarmed")
			if prewarmed {
				d = warm
				if d.prewarm == nil {
					b.Skip("no pre-warmed workers here")
				}
			}
			waitWorker := func() {
				for i := 0; prewarmed && i < 1000 && d.PrewarmStats().Ready[tc.spec.Runtime] == 0; i++ {
					time.Sleep(10 * time.Millisecond)
				}
				// A spare sandbox ready, as after any pause between cold
				// starts; a burst beyond Config.SpareSandboxes starts
				// sandboxes from scratch.
				for i := 0; d.cfg.SpareSandboxes > 0 && d.sb.ownUser && i < 1000 && d.sb.spareCount() == 0; i++ {
					time.Sleep(10 * time.Millisecond)
				}
			}
			m, err := loadErr(d, "bench", tc.spec, tc.code(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			ctx := context.Background()
			waitWorker()
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				in, err := m.NewInstance(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := in.Invoke(ctx, &gust.Request{Method: "GET", Path: "/echo"}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				took = append(took, time.Since(t0))
				in.Close(ctx)
				waitWorker()
				b.StartTimer()
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(took[(len(took)*99)/100])/1e6, "p99-ms")
		})
	}
}

// BenchmarkColdStartBare is the floor under BenchmarkColdStart/go-http
// on this machine: the same binary started bare on the host (no
// sandbox), polled until it accepts a connection, and sent one request.
// What go-http takes beyond it is gust's cold-start overhead.
func BenchmarkColdStartBare(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "httpfn")
	if err := os.WriteFile(bin, goBuild(&testing.T{}, "", "./testdata/httpfn"), 0o755); err != nil {
		b.Fatal(err)
	}
	took := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		port, err := freePort()
		if err != nil {
			b.Fatal(err)
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port) + "/echo"
		hc := &http.Client{Transport: &http.Transport{}}
		t0 := time.Now()
		cmd := exec.Command(bin)
		cmd.Env = []string{"PORT=" + strconv.Itoa(port)}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for j := 0; ; j++ {
			resp, err := hc.Get(url)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				break
			}
			if j == 100000 {
				b.Fatal(err)
			}
			time.Sleep(50 * time.Microsecond)
		}
		b.StopTimer()
		took = append(took, time.Since(t0))
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		hc.CloseIdleConnections()
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99)/100])/1e6, "p99-ms")
}

func httpFnB(b *testing.B) []byte {
	return makeZipB(b, zipEntry{name: "bootstrap", mode: 0o755, data: goBuild(&testing.T{}, "", "./testdata/httpfn")})
}

func makeZipB(b *testing.B, entries ...zipEntry) []byte {
	return makeZip(&testing.T{}, entries...)
}

func zipDirB(b *testing.B, dir string) []byte {
	code, err := ZipDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	return code
}

// BenchmarkWarmThroughput compares a warm Go http-protocol function
// invoked through the driver (sandbox, network namespace, bridge) with the
// same program run bare on the host and hit directly over HTTP. Compare
// the ns/op of the two: the target is gust ≥ 0.7× direct in requests/s.
func BenchmarkWarmThroughput(b *testing.B) {
	code := httpFnB(b)
	bin := filepath.Join(b.TempDir(), "httpfn")
	if err := os.WriteFile(bin, goBuild(&testing.T{}, "", "./testdata/httpfn"), 0o755); err != nil {
		b.Fatal(err)
	}
	const conc = 4
	b.Run("direct", func(b *testing.B) {
		port, err := freePort()
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin)
		cmd.Env = []string{"PORT=" + strconv.Itoa(port)}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		url := "http://127.0.0.1:" + strconv.Itoa(port) + "/echo"
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
		for i := 0; i < 200; i++ {
			if resp, err := hc.Get(url); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.SetParallelism(conc / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := hc.Post(url, "text/plain", strings.NewReader("hello"))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	})
	b.Run("gust", func(b *testing.B) {
		d, err := New(Config{WorkDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SpareSandboxes: -1})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close(context.Background())
		m, err := loadErr(d, "tput", gust.Spec{Runtime: gust.RuntimeProcess, PerInstanceConcurrency: conc}, code, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close(context.Background())
		in, err := m.NewInstance(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close(context.Background())
		b.SetParallelism(conc / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, err := in.Invoke(context.Background(), &gust.Request{Method: "POST", Path: "/echo", Header: http.Header{}, Body: []byte("hello")})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
