package wasm_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// leanHello is hello on the lean API, to measure what net/http costs a guest.
const leanHello = `package main

import "github.com/gustfaas/gust/sdk/lean"

func init() {
	lean.HandleFunc(func(r *lean.Request) *lean.Response {
		name := r.QueryValue("name")
		if name == "" {
			name = "world"
		}
		return lean.Text(200, "Hello, "+name+"!\n")
	})
}

func main() {}
`

// snapshotModes runs a benchmark with snapshots on and off, in one run.
func snapshotModes(b *testing.B, fn func(b *testing.B, spec gust.Spec)) {
	off := false
	b.Run("snapshot=on", func(b *testing.B) { fn(b, gust.Spec{}) })
	b.Run("snapshot=off", func(b *testing.B) { fn(b, gust.Spec{Snapshot: &off}) })
}

// reportPercentiles reports the 50th and 99th percentile of ds.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// benchColdStart measures a new instance and its first call. With keep,
// every instance stays open until the end, as in a burst of cold starts;
// without, each is closed before the next starts, as when a function
// scaled to zero gets a request (a restore may then reuse the memory of
// the instance closed before it).
func benchColdStart(b *testing.B, path string, spec gust.Spec, keep bool) {
	d := newDriver(b)
	m := load(b, d, path, spec, nil)
	ctx := context.Background()
	req := get("/", "name=bench")
	// The first instance is the one a snapshot is captured from.
	first, err := m.NewInstance(ctx)
	if err != nil {
		b.Fatal(err)
	}
	first.Close(ctx)
	var mem uint64
	var ds []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		inst, err := m.NewInstance(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inst.Invoke(ctx, req); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
		mem = wasm.MemorySize(inst)
		if keep {
			defer inst.Close(ctx)
		} else {
			inst.Close(ctx)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(mem), "idle-mem-bytes/instance")
	reportPercentiles(b, ds)
}

func benchWarm(b *testing.B, path string, req *gust.Request, spec gust.Spec) {
	d := newDriver(b)
	m := load(b, d, path, spec, nil)
	start(b, m) // captured when snapshots are on; the next one is restored
	inst := start(b, m)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := inst.Invoke(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReactorColdStart is a cold start of examples/hello (net/http
// SDK): a new instance and its first call, with the compilation cache warm.
// With snapshots on the instance is restored from the snapshot the first
// instance left; off, it is instantiated and runs _initialize.
func BenchmarkReactorColdStart(b *testing.B) {
	path := wasmtest.Hello(b)
	snapshotModes(b, func(b *testing.B, spec gust.Spec) { benchColdStart(b, path, spec, false) })
}

// BenchmarkReactorColdStartLean is the same on the lean SDK.
func BenchmarkReactorColdStartLean(b *testing.B) {
	path := wasmtest.GoGuest(b, leanHello)
	snapshotModes(b, func(b *testing.B, spec gust.Spec) { benchColdStart(b, path, spec, false) })
}

// BenchmarkReactorColdStartBurst is BenchmarkReactorColdStart with every
// instance kept open: no memory to reuse, and shells made in the
// background only as fast as they can be. Run it with a bounded
// -benchtime (say 200x): instances accumulate.
func BenchmarkReactorColdStartBurst(b *testing.B) {
	path := wasmtest.Hello(b)
	snapshotModes(b, func(b *testing.B, spec gust.Spec) { benchColdStart(b, path, spec, true) })
}

// BenchmarkReactorWarm is a call of examples/hello on a warm instance.
func BenchmarkReactorWarm(b *testing.B) {
	path := wasmtest.Hello(b)
	snapshotModes(b, func(b *testing.B, spec gust.Spec) { benchWarm(b, path, get("/", "name=bench"), spec) })
}

// BenchmarkReactorWarmLean is the same on the lean SDK.
func BenchmarkReactorWarmLean(b *testing.B) {
	path := wasmtest.GoGuest(b, leanHello)
	snapshotModes(b, func(b *testing.B, spec gust.Spec) { benchWarm(b, path, get("/", "name=bench"), spec) })
}

// BenchmarkIdleInstances starts GUST_BENCH_INSTANCES (default 1000) warm
// instances of examples/hello, each having served one call, and reports
// what they cost the process: proportional set size (Pss, which counts a
// page shared by n mappings as 1/n: the honest total for copy-on-write
// memory) and anonymous resident memory, per instance and in total. Run it
// with -benchtime=1x.
func BenchmarkIdleInstances(b *testing.B) {
	n := 1000
	if s := os.Getenv("GUST_BENCH_INSTANCES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	path := wasmtest.Hello(b)
	snapshotModes(b, func(b *testing.B, spec gust.Spec) {
		d := newDriver(b)
		m := load(b, d, path, spec, nil)
		ctx := context.Background()
		req := get("/", "name=bench")
		start(b, m)
		for b.Loop() {
			before := memStats(b)
			insts := make([]gust.Instance, 0, n)
			for range n {
				inst, err := m.NewInstance(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := inst.Invoke(ctx, req); err != nil {
					b.Fatal(err)
				}
				insts = append(insts, inst)
			}
			after := memStats(b)
			pss, anon := after.pss-before.pss, after.anon-before.anon
			b.ReportMetric(float64(pss)/(1<<20), "Pss-MiB-total")
			b.ReportMetric(float64(pss)/float64(n)/(1<<10), "Pss-KiB/instance")
			b.ReportMetric(float64(anon)/float64(n)/(1<<10), "anon-KiB/instance")
			for _, inst := range insts {
				inst.Close(ctx)
			}
		}
	})
}

type procMem struct{ pss, anon int64 }

// memStats reads the process's Pss and anonymous memory, after a GC so
// that garbage does not count.
func memStats(b *testing.B) procMem {
	goruntime.GC()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		b.Skipf("no /proc/self/smaps_rollup: %v", err)
	}
	var pm procMem
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Pss:":
			pm.pss = kb << 10
		case "Anonymous:":
			pm.anon = kb << 10
		}
	}
	return pm
}

// BenchmarkReactorWarm64KiB echoes a 64 KiB body on a warm lean instance.
func BenchmarkReactorWarm64KiB(b *testing.B) {
	req := &gust.Request{Method: "POST", Path: "/echo", Header: http.Header{}, Body: bytes.Repeat([]byte("x"), 64<<10)}
	b.SetBytes(int64(len(req.Body)))
	benchWarm(b, wasmtest.GoGuest(b, misbehave), req, gust.Spec{})
}

// BenchmarkWagiColdStart runs examples/hello-c: every call is a fresh
// instance, so every call is a cold start.
func BenchmarkWagiColdStart(b *testing.B) {
	benchWarm(b, wasmtest.HelloC(b), get("/", "name=bench"), gust.Spec{})
}

// BenchmarkLoadCached is a server restart's load of examples/hello: a new
// Driver on a warm compilation cache directory.
func BenchmarkLoadCached(b *testing.B) {
	code := wasmtest.Code(b, wasmtest.Hello(b))
	dir := wasmtest.CacheDir(b)
	ctx := context.Background()
	for b.Loop() {
		d, err := wasm.New(wasm.Config{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Load(ctx, version("fn", gust.Spec{}), code, nil); err != nil {
			b.Fatal(err)
		}
		d.Close(ctx)
	}
}
