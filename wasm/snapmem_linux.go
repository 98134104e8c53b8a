package wasm

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mappedMemory is a restored memory that shares the snapshot file's pages
// until the instance writes them. It reserves the memory's maximum size in
// address space at once (MAP_NORESERVE: no commit charge, no RSS), then
// maps the snapshot over its start, private and writable: a write copies
// just that page. Growing never moves or copies the memory; the pages past
// the snapshot are anonymous zero pages.
//
// The file is mapped read-only with MAP_POPULATE and then made writable:
// every page is in the page table from the start, shared with the page
// cache, and only a write faults (to copy that page). A private writable
// mapping cannot be populated without copying every page.
type mappedMemory struct {
	base unsafe.Pointer
	max  uintptr
	buf  []byte
	once sync.Once
}

func (img *image) mapMemory(max uint64) *mappedMemory {
	if max < img.memSize || max == 0 || uint64(uintptr(max)) != max {
		return nil
	}
	base, err := unix.MmapPtr(-1, 0, nil, uintptr(max), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	if _, err := unix.MmapPtr(img.fd, img.memOff, base, uintptr(img.memSize), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_FIXED|unix.MAP_NORESERVE|unix.MAP_POPULATE); err != nil {
		unix.MunmapPtr(base, uintptr(max))
		return nil
	}
	if err := unix.Mprotect(unsafe.Slice((*byte)(base), img.memSize), unix.PROT_READ|unix.PROT_WRITE); err != nil {
		unix.MunmapPtr(base, uintptr(max))
		return nil
	}
	return &mappedMemory{base: base, max: uintptr(max), buf: unsafe.Slice((*byte)(base), max)}
}

func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(m.max) {
		return nil
	}
	return m.buf[:size]
}

func (m *mappedMemory) Free() {
	m.once.Do(func() {
		m.buf = nil
		unix.MunmapPtr(m.base, m.max)
	})
}
