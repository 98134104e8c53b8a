package wasm

import (
	"io"

	"github.com/tetratelabs/wazero/experimental"
)

var _ experimental.MemoryAllocator = (*image)(nil)

// Allocate returns the linear memory of a restored instance: the snapshot's
// bytes, mapped copy-on-write where the platform allows, else copied.
func (img *image) Allocate(_, max uint64) experimental.LinearMemory {
	if m := img.mapMemory(max); m != nil {
		return m
	}
	return img.copyMemory(max)
}

// copiedMemory is a restored memory in the Go heap: the fallback when the
// snapshot cannot be mapped. It costs the whole snapshot per instance.
type copiedMemory struct {
	buf []byte
	max uint64
}

func (img *image) copyMemory(max uint64) *copiedMemory {
	buf := make([]byte, img.memSize)
	if _, err := img.f.ReadAt(buf, img.memOff); err != nil && err != io.EOF {
		// The file was verified at open and is held open: a failed read
		// is an I/O error. Hand out a memory the host refuses: restore
		// sees the size is wrong and falls back to a normal start.
		buf = buf[:0]
	}
	return &copiedMemory{buf: buf, max: max}
}

func (m *copiedMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	b := make([]byte, size, min(m.max, max(size, 2*uint64(cap(m.buf)))))
	copy(b, m.buf)
	m.buf = b
	return b
}

func (m *copiedMemory) Free() { m.buf = nil }
