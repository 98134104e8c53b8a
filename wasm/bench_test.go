package wasm_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

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

func benchColdStart(b *testing.B, path string) {
	d := newDriver(b)
	m := load(b, d, path, gust.Spec{}, nil)
	ctx := context.Background()
	req := get("/", "name=bench")
	var mem uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		inst, err := m.NewInstance(ctx)
		if err != nil {
			b.Fatal(err)
		}
		mem = wasm.MemorySize(inst)
		if _, err := inst.Invoke(ctx, req); err != nil {
			b.Fatal(err)
		}
		inst.Close(ctx)
	}
	b.ReportMetric(float64(mem), "idle-mem-bytes/instance")
}

func benchWarm(b *testing.B, path string, req *gust.Request) {
	d := newDriver(b)
	inst := start(b, load(b, d, path, gust.Spec{}, nil))
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
// SDK): instantiate, _initialize, first call. The compilation cache is warm.
func BenchmarkReactorColdStart(b *testing.B) { benchColdStart(b, wasmtest.Hello(b)) }

// BenchmarkReactorColdStartLean is the same on the lean SDK.
func BenchmarkReactorColdStartLean(b *testing.B) { benchColdStart(b, wasmtest.GoGuest(b, leanHello)) }

// BenchmarkReactorWarm is a call of examples/hello on a warm instance.
func BenchmarkReactorWarm(b *testing.B) { benchWarm(b, wasmtest.Hello(b), get("/", "name=bench")) }

// BenchmarkReactorWarmLean is the same on the lean SDK.
func BenchmarkReactorWarmLean(b *testing.B) {
	benchWarm(b, wasmtest.GoGuest(b, leanHello), get("/", "name=bench"))
}

// BenchmarkReactorWarm64KiB echoes a 64 KiB body on a warm lean instance.
func BenchmarkReactorWarm64KiB(b *testing.B) {
	req := &gust.Request{Method: "POST", Path: "/echo", Header: http.Header{}, Body: bytes.Repeat([]byte("x"), 64<<10)}
	b.SetBytes(int64(len(req.Body)))
	benchWarm(b, wasmtest.GoGuest(b, misbehave), req)
}

// BenchmarkWagiColdStart runs examples/hello-c: every call is a fresh
// instance, so every call is a cold start.
func BenchmarkWagiColdStart(b *testing.B) {
	benchWarm(b, wasmtest.HelloC(b), get("/", "name=bench"))
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
