package wasm

import (
	"fmt"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// restorableMemory is the linear memory of an instance that starts from a
// snapshot. wazero allocates it when it instantiates the instance's shell
// (see shell.go), and it holds nothing yet; restore fills it when the
// instance is taken.
type restorableMemory interface {
	experimental.LinearMemory
	// restore makes the memory hold img's memory image, grown to the
	// image's size through mem, wazero's view of this memory.
	restore(img *image, mem api.Memory) error
	// touched reports which pages of the memory's first size bytes the
	// instance has touched since restore (only the first snapSize bytes
	// come from the snapshot), or nil where the platform cannot tell.
	touched(snapSize, size uint64) (*hotPages, error)
}

// shellAllocator gives one shell its memory and keeps hold of it, so the
// shell can restore it later. rec is the module's recycler of memories.
type shellAllocator struct {
	rec *recycler
	mem restorableMemory
}

var _ experimental.MemoryAllocator = (*shellAllocator)(nil)

func (a *shellAllocator) Allocate(_, max uint64) experimental.LinearMemory {
	a.mem = newRestorableMemory(max, a.rec)
	return a.mem
}

// heapMemory is a restored memory in the Go heap: the fallback where the
// snapshot cannot be mapped. It costs a copy of the whole snapshot per
// instance.
type heapMemory struct {
	buf []byte
	max uint64
}

func (m *heapMemory) restore(img *image, mem api.Memory) error {
	if err := growTo(mem, img.memSize); err != nil {
		return err
	}
	view, ok := mem.Read(0, uint32(img.memSize))
	if !ok {
		return fmt.Errorf("memory of %d bytes is smaller than the snapshot's %d", mem.Size(), img.memSize)
	}
	if _, err := img.f.ReadAt(view, img.memOff); err != nil {
		return fmt.Errorf("read the snapshot's memory: %w", err)
	}
	return nil
}

func (m *heapMemory) touched(_, _ uint64) (*hotPages, error) { return nil, nil }

func (m *heapMemory) Reallocate(size uint64) []byte {
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

func (m *heapMemory) Free() { m.buf = nil }

// growTo grows mem to size bytes, which must be whole wasm pages.
func growTo(mem api.Memory, size uint64) error {
	if cur := uint64(mem.Size()); cur < size {
		if _, ok := mem.Grow(uint32((size - cur) >> 16)); !ok {
			return fmt.Errorf("grow memory from %d to %d bytes", cur, size)
		}
	}
	if cur := uint64(mem.Size()); cur != size {
		return fmt.Errorf("memory is %d bytes, snapshot %d", cur, size)
	}
	return nil
}

// hotPages is what the first call of a restored instance touched in its
// memory, as runs of pages: the pages it wrote, and those it only read.
// Later restores of the same snapshot copy the written runs and map the
// read ones up front (a few madvise calls) instead of taking a page fault
// for each during the first call. That is most of what the copy-on-write
// mapping saves on a cold start: a write to a page already mapped from the
// file must flush that page from the TLB of every CPU running the process,
// an interrupt to each, which costs several microseconds per page on a VM;
// a page copied before anything mapped it costs no flush.
type hotPages struct {
	write, read []pageRun
}

// pageRun is a run of pages, in bytes from the start of the memory.
type pageRun struct{ off, len uintptr }

// Runs of touched pages closer than this many pages are merged: one system
// call costs more than populating a few pages nobody asked for.
const (
	writeRunGap = 2
	readRunGap  = 16
)

// pageRuns turns per-page flags into runs of set pages, merging runs
// separated by at most gap clear pages.
func pageRuns(set []bool, pageSize uintptr, gap int) []pageRun {
	var runs []pageRun
	start, last := -1, -1
	for i, ok := range set {
		if !ok {
			continue
		}
		if start >= 0 && i-last-1 > gap {
			runs = append(runs, pageRun{uintptr(start) * pageSize, uintptr(last-start+1) * pageSize})
			start = -1
		}
		if start < 0 {
			start = i
		}
		last = i
	}
	if start >= 0 {
		runs = append(runs, pageRun{uintptr(start) * pageSize, uintptr(last-start+1) * pageSize})
	}
	return runs
}

func (h *hotPages) pages(pageSize uintptr) (write, read int) {
	for _, r := range h.write {
		write += int(r.len / pageSize)
	}
	for _, r := range h.read {
		read += int(r.len / pageSize)
	}
	return write, read
}
