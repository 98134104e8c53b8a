//go:build wasip1

package abi

import (
	randv2 "math/rand/v2"
	"time"
	"unsafe"
)

// reqBuf holds the request the host writes; respBuf the encoded response
// the host reads. Both live in package variables so the GC keeps them (and
// their addresses, which the host holds between calls) alive, and both are
// reused so a warm call allocates only what the handler does.
var reqBuf, respBuf []byte

//go:wasmexport gust_malloc
func gustMalloc(size uint32) uint32 {
	if uint64(cap(reqBuf)) < uint64(size) || cap(reqBuf) == 0 {
		// Grow with headroom so a stream of slightly larger requests does not
		// reallocate on every call.
		reqBuf = make([]byte, max(uint64(size)+uint64(size)/4, 4096))
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(reqBuf))))
}

//go:wasmexport gust_handle
func gustHandle(ptr, size uint32) uint64 { return handle(ptr, size, false) }

// gust_handle_v2 is gust_handle of ABI version 2, whose request carries
// the raw path too. A host that knows version 2 calls it instead of
// gust_handle; an older host calls gust_handle, so a guest built with
// this SDK runs on both.
//
//go:wasmexport gust_handle_v2
func gustHandleV2(ptr, size uint32) uint64 { return handle(ptr, size, true) }

func handle(ptr, size uint32, v2 bool) uint64 {
	var req []byte
	if ptr == uint32(uintptr(unsafe.Pointer(unsafe.SliceData(reqBuf)))) && uint64(size) <= uint64(cap(reqBuf)) {
		req = reqBuf[:size]
	} else {
		// Not the buffer gust_malloc handed out: refuse to read arbitrary
		// memory. Serve answers 500 for the empty input.
		req = nil
	}
	respBuf = serve(respBuf[:0], req, v2)
	if writeBarrier.enabled {
		finishGC()
	}
	p := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(respBuf))))
	return p<<32 | uint64(len(respBuf))
}

// gust_restored runs the OnRestore hooks in an instance the host restored
// from a snapshot. The host calls it once, before the first gust_handle.
//
//go:wasmexport gust_restored
func gustRestored() { RunRestoreHooks() }

// gust_snapshot_check returns 0 if the host may capture this instance's
// state after _initialize, or a reason code (see SnapshotCheck).
//
//go:wasmexport gust_snapshot_check
func gustSnapshotCheck() uint32 { return SnapshotCheck(1) }

// gust_runtime_rand returns one value of the Go runtime's internal random
// generator, which seeds math/rand, math/rand/v2 and map iteration. The host
// draws one before capturing a snapshot to find that generator's state in
// linear memory and give every restored instance a fresh one: the runtime
// itself offers no way to reseed it.
//
//go:wasmexport gust_runtime_rand
func gustRuntimeRand() uint64 { return randv2.Uint64() }

// writeBarrier is the Go runtime's flag that its compiled code tests before
// every pointer write; it is set while a GC cycle marks. (The runtime keeps
// the symbol for linkname on purpose: go.dev/issue/67401.)
//
//go:linkname writeBarrier runtime.writeBarrier
var writeBarrier struct {
	enabled bool
	pad     [3]byte
	alignme uint64
}

// finishGC lets the runtime finish the GC cycle that is marking, before
// the call returns to the host.
//
// Why: in a reactor the runtime's background mark workers hardly ever run
// (the one goroutine returns to the host between calls and never parks
// during one), so a cycle that a call's allocation starts advances only by
// that and later calls' allocation assists, and stays in its mark phase
// for thousands of calls. All that time every pointer write of guest code
// goes through the write barrier and its buffer's flushes: in a profile of
// the net/http hello they were 14% of the guest's CPU, the assists'
// marking under 2%. Parking this goroutine for a moment lets the scheduler run the
// mark workers, which finish the cycle in a few rounds (4 on average in a
// test guest; runtime.GC would also do it, but runs a second full cycle).
// The loop is bounded: a cycle it does not finish goes on as before. Any
// goroutine of the function's own that is ready may run then too, as it
// would whenever a handler blocks.
func finishGC() {
	for i := 0; i < 1000 && writeBarrier.enabled; i++ {
		time.Sleep(time.Nanosecond)
	}
}
