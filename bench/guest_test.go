package bench

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// allocGuest is a Go reactor on the bare ABI, with no SDK: it reads n from
// the query ("n=10"), makes n heap allocations of 64 bytes, and answers a
// fixed "ok" from a static buffer. With n=0 a call is the floor of the
// reactor ABI (two calls into the guest, no allocation); the slope over n
// is what one allocation costs inside a Go guest.
const allocGuest = `package main

import "unsafe"

var (
	reqBuf = make([]byte, 64<<10)
	resp   = []byte{200, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 'o', 'k'}
	sink   []byte
)

//go:wasmexport gust_malloc
func gustMalloc(size uint32) uint32 {
	if int(size) > len(reqBuf) {
		reqBuf = make([]byte, size)
	}
	return uint32(uintptr(unsafe.Pointer(&reqBuf[0])))
}

func le32(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24 }

//go:wasmexport gust_handle
func gustHandle(ptr, size uint32) uint64 {
	b := reqBuf[:size]
	b = b[4+le32(b):] // method
	b = b[4+le32(b):] // path
	q := b[4 : 4+le32(b)]
	n := 0
	if len(q) > 2 && q[0] == 'n' && q[1] == '=' {
		for _, c := range q[2:] {
			n = n*10 + int(c-'0')
		}
	}
	for i := 0; i < n; i++ {
		sink = make([]byte, 64)
	}
	return uint64(uintptr(unsafe.Pointer(&resp[0])))<<32 | uint64(len(resp))
}

func main() {}
`

// BenchmarkGuestAllocs is a warm call of allocGuest through gust's wasm
// driver, with n allocations in the guest. It explains the warm-call
// figures of the wasm package's benchmarks: a call of the SDK's hello
// costs what its allocations cost.
func BenchmarkGuestAllocs(b *testing.B) {
	path := wasmtest.GoGuest(b, allocGuest)
	d, err := wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(b)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Cleanup(func() { _ = d.Close(ctx) })
	code := wasmtest.Code(b, path)
	// The guest's own GC is one suspect of what an allocation costs:
	// GOGC=off in the function's environment takes it out.
	for _, gogc := range []string{"", "off"} {
		env := map[string]string{}
		name := "gc=on"
		if gogc != "" {
			env["GOGC"] = gogc
			name = "gc=" + gogc
		}
		m, err := d.Load(ctx, &gust.Version{Function: "alloc", Number: 1, Spec: gust.Spec{Runtime: gust.RuntimeWasm, Env: env}}, code, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) { benchAllocs(b, m, gogc == "off") })
		if err := m.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// benchAllocs calls a warm instance in a loop. With the guest's GC off
// (noGC) nothing is ever freed, so the instance is replaced, off the
// clock, before its garbage reaches half of the memory limit.
func benchAllocs(b *testing.B, m gust.Module, noGC bool) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 10, 100} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			inst, err := m.NewInstance(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { inst.Close(ctx) }()
			// Each call leaves its n allocations and the request and
			// response buffers (about 1 KiB) behind.
			perInstance := (64 << 20) / (n*64 + 1024)
			req := &gust.Request{Method: "GET", Path: "/", Query: fmt.Sprintf("n=%d", n), Header: http.Header{}}
			for i := 1; b.Loop(); i++ {
				if noGC && i%perInstance == 0 {
					b.StopTimer()
					_ = inst.Close(ctx)
					if inst, err = m.NewInstance(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				resp, err := inst.Invoke(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if resp.Status != 200 || string(resp.Body) != "ok" {
					b.Fatalf("answer %d %q, want 200 \"ok\"", resp.Status, resp.Body)
				}
			}
		})
	}
}
