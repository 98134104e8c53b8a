//go:build wasip1

package abi

import (
	randv2 "math/rand/v2"
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
func gustHandle(ptr, size uint32) uint64 {
	var req []byte
	if ptr == uint32(uintptr(unsafe.Pointer(unsafe.SliceData(reqBuf)))) && uint64(size) <= uint64(cap(reqBuf)) {
		req = reqBuf[:size]
	} else {
		// Not the buffer gust_malloc handed out: refuse to read arbitrary
		// memory. Serve answers 500 for the empty input.
		req = nil
	}
	respBuf = Serve(respBuf[:0], req)
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
