package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// Restored memories on Linux.
//
// A restored instance's memory is a region of address space reserved at
// the memory's maximum size (MAP_NORESERVE: no commit charge, no RSS) with
// the snapshot file mapped over its start, private and writable: it shares
// the page cache's pages until it writes one, which copies just that page.
// Growing never moves or copies the memory; the pages past the snapshot
// are anonymous zero pages.
//
// What costs on this kind of machine (a VM) is changing page tables, not
// copying bytes: a page fault that maps a page costs microseconds, and a
// write to a page mapped read-only from the file also flushes that page
// from the TLB of every CPU running the process, an interrupt to each;
// copying a 4 KiB page into a page already mapped costs a fraction of a
// microsecond. Hence two measures:
//
//   - A region is recycled. When an instance closes, its region keeps its
//     mappings and goes to its module's recycler (a few per module) with
//     the list of pages the instance wrote (from /proc/self/pagemap: a
//     private copy is an anonymous page, an unwritten one is still the
//     file's). A later restore resets exactly those pages, copying the
//     snapshot's bytes over them (zeroing those past the snapshot), and
//     the instance finds every page its predecessor used already mapped.
//     Pages it did not write still are the file's, the snapshot unchanged.
//   - A fresh region (none to recycle) populates up front, in a few
//     madvise calls, the pages the first call of an instance touches
//     (hotPages, learnt once per snapshot): written ones copied before
//     anything mapped them, so without a TLB flush, read ones mapped.
type mappedMemory struct {
	rec  *recycler
	max  uintptr
	cur  *region // what Reallocate hands out
	next *region // a recycled region restore chose; the next Reallocate moves to it
	left *region // the fresh region cur was before it moved; unused, unmapped at Free
	size uintptr // the memory's size, as wazero last set it
	once sync.Once
}

// region is reserved address space for one linear memory.
type region struct {
	base unsafe.Pointer
	size uintptr
	buf  []byte
	img  *image    // the snapshot mapped over its start; nil while fresh
	used uintptr   // bytes of it a memory used, as far as Free knows
	dirt []pageRun // pages written since the snapshot was mapped, found at Free
}

func reserveRegion(max uint64) *region {
	if max == 0 || uint64(uintptr(max)) != max {
		return nil
	}
	base, err := unix.MmapPtr(-1, 0, nil, uintptr(max), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	return &region{base: base, size: uintptr(max), buf: unsafe.Slice((*byte)(base), max)}
}

func (g *region) unmap() { _ = unix.MunmapPtr(g.base, g.size) }

// newRestorableMemory returns a memory that will share the snapshot file's
// pages until the instance writes them, or one in the Go heap if address
// space for it cannot be reserved.
func newRestorableMemory(max uint64, rec *recycler) restorableMemory {
	if g := reserveRegion(max); g != nil {
		return &mappedMemory{rec: rec, max: g.size, cur: g}
	}
	return &heapMemory{max: max}
}

func (m *mappedMemory) restore(img *image, mem api.Memory) error {
	if img.memSize > uint64(m.max) {
		return fmt.Errorf("snapshot of %d bytes is over the memory's maximum of %d", img.memSize, m.max)
	}
	// wazero learns of a moved memory only when it grows, so a recycled
	// region can serve only a memory the snapshot makes larger.
	if img.memSize > uint64(mem.Size()) {
		if g := m.rec.get(img, m.max); g != nil {
			if err := g.reset(img); err != nil {
				g.unmap()
			} else {
				m.next = g
			}
		}
	}
	if m.next == nil {
		if err := m.cur.mapSnapshot(img); err != nil {
			return err
		}
	}
	return growTo(mem, img.memSize)
}

// mapSnapshot maps img over the start of a fresh region and populates the
// pages a first call touches.
func (g *region) mapSnapshot(img *image) error {
	// MAP_FIXED replaces the start of the reservation, which nothing has
	// touched, so nothing is unmapped and nothing flushed.
	if _, err := unix.MmapPtr(img.fd, img.memOff, g.base, uintptr(img.memSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED|unix.MAP_NORESERVE); err != nil {
		return fmt.Errorf("map the snapshot: %w", err)
	}
	g.img = img
	if hot := img.hot.Load(); hot != nil {
		g.populate(hot)
	}
	return nil
}

// populate copies the hot pages the first call writes and maps those it
// reads. A failure (a kernel before 5.14 has no MADV_POPULATE_*) leaves
// them to fault in as usual.
func (g *region) populate(h *hotPages) {
	for _, r := range h.write {
		if r.off+r.len <= g.size {
			_ = unix.Madvise(g.buf[r.off:r.off+r.len], unix.MADV_POPULATE_WRITE)
		}
	}
	for _, r := range h.read {
		if r.off+r.len <= g.size {
			_ = unix.Madvise(g.buf[r.off:r.off+r.len], unix.MADV_POPULATE_READ)
		}
	}
}

// reset makes a recycled region hold img's memory again: the pages the
// last instance wrote get the snapshot's bytes back, or zeros past the
// snapshot. The bytes come from a mapping of the file (img.view), a copy
// per run instead of a system call.
func (g *region) reset(img *image) error {
	v := &img.view
	v.mu.RLock()
	defer v.mu.RUnlock()
	src := v.get(img)
	if src == nil {
		return errors.New("snapshot not mapped")
	}
	snapEnd := uintptr(img.memSize)
	for _, r := range g.dirt {
		end := r.off + r.len
		if r.off < snapEnd {
			copy(g.buf[r.off:min(end, snapEnd)], src[r.off:min(end, snapEnd)])
		}
		if end > snapEnd {
			clear(g.buf[max(r.off, snapEnd):end])
		}
	}
	g.dirt = nil
	return nil
}

// imageView is a read-only mapping of a snapshot's memory image, made on
// first use and populated at once, shared with the page cache. close
// waits for resets copying from it.
type imageView struct {
	mu     sync.RWMutex
	once   sync.Once
	buf    []byte
	closed bool
}

// get returns the view, mapping it on first use, or nil if it cannot be
// mapped or is closed. The caller holds v.mu for reading.
func (v *imageView) get(img *image) []byte {
	if v.closed {
		return nil
	}
	v.once.Do(func() {
		b, err := unix.Mmap(img.fd, img.memOff, int(img.memSize), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err == nil {
			v.buf = b
		}
	})
	return v.buf
}

func (v *imageView) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	if v.buf != nil {
		_ = unix.Munmap(v.buf)
		v.buf = nil
	}
}

func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(m.max) {
		return nil
	}
	if m.next != nil {
		m.left, m.cur, m.next = m.cur, m.next, nil
	}
	m.size = uintptr(size)
	return m.cur.buf[:size]
}

// Free recycles the region, or unmaps it if it holds no snapshot or the
// recycler is full.
func (m *mappedMemory) Free() {
	m.once.Do(func() {
		if m.left != nil {
			m.left.unmap()
		}
		if m.next != nil { // restore failed half-way
			m.next.unmap()
		}
		g := m.cur
		g.used = max(g.used, m.size)
		if g.img == nil || !m.rec.put(g) {
			g.unmap()
		}
	})
}

// Bits of a /proc/self/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
const (
	pagemapPresent = 1 << 63
	pagemapSwapped = 1 << 62
	pagemapFile    = 1 << 61 // a page of a file (or shared memory), not a private copy
)

var pagemap = sync.OnceValues(func() (*os.File, error) { return os.Open("/proc/self/pagemap") })

// pages returns the pagemap entries of the region's first n bytes.
func (g *region) pages(n uintptr) ([]uint64, error) {
	f, err := pagemap()
	if err != nil {
		return nil, err
	}
	ps := uintptr(os.Getpagesize())
	count := min(n, g.size) / ps
	raw := make([]byte, 8*count)
	if _, err := f.ReadAt(raw, int64(uintptr(g.base)/ps*8)); err != nil {
		return nil, fmt.Errorf("read pagemap: %w", err)
	}
	out := make([]uint64, count)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return out, nil
}

// written returns the runs of pages in the region's first n bytes that
// are not the file's: private copies (written since the snapshot was
// mapped), swapped out or not, and pages past the snapshot (the zero page
// among them, which a reset writes needlessly but harmlessly).
func (g *region) written(n uintptr) ([]pageRun, error) {
	entries, err := g.pages(n)
	if err != nil {
		return nil, err
	}
	set := make([]bool, len(entries))
	for i, e := range entries {
		set[i] = e&(pagemapPresent|pagemapSwapped) != 0 && e&pagemapFile == 0
	}
	return pageRuns(set, uintptr(os.Getpagesize()), 0), nil
}

// touched reads the process's page table for the memory: a present page
// that is not the file's is one the instance wrote (its private copy, or
// a page past the snapshot); a present page of the file is one it read.
// Read runs stay within the snapshot: past it, a read maps the zero page,
// and a write to that would cost the flush populating is meant to avoid.
func (m *mappedMemory) touched(snapSize, size uint64) (*hotPages, error) {
	entries, err := m.cur.pages(uintptr(size))
	if err != nil {
		return nil, err
	}
	ps := uintptr(os.Getpagesize())
	written, read := make([]bool, len(entries)), make([]bool, min(len(entries), int(uintptr(snapSize)/ps)))
	for i, e := range entries {
		if e&pagemapPresent == 0 {
			continue
		}
		if e&pagemapFile == 0 {
			written[i] = true
		} else if i < len(read) {
			read[i] = true
		}
	}
	return &hotPages{write: pageRuns(written, ps, writeRunGap), read: pageRuns(read, ps, readRunGap)}, nil
}

// recycler keeps the regions of a module's closed restored instances for
// its next restores.
type recycler struct {
	mu     sync.Mutex
	free   []*region
	closed bool
}

// Bounds of what a recycler keeps: regions (each holds the pages its
// instance wrote, resident while it waits) and the pages a reset may copy.
const (
	maxRecycled      = 2
	maxRecycledDirty = 16 << 20
)

// get returns a recycled region holding img of max bytes, with its list of
// written pages, or nil.
func (p *recycler) get(img *image, max uintptr) *region {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if g := p.free[i]; g.img == img && g.size == max {
			p.free = append(p.free[:i], p.free[i+1:]...)
			return g
		}
	}
	return nil
}

// put takes g for a later restore, after finding the pages its instance
// wrote; false means the caller must unmap it.
func (p *recycler) put(g *region) bool {
	p.mu.Lock()
	full := p.closed || len(p.free) >= maxRecycled
	p.mu.Unlock()
	if full {
		return false
	}
	dirt, err := g.written(g.used)
	if err != nil {
		return false
	}
	var n uintptr
	for _, r := range dirt {
		n += r.len
	}
	if n > maxRecycledDirty {
		return false
	}
	g.dirt = dirt
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.free) >= maxRecycled {
		return false
	}
	p.free = append(p.free, g)
	return true
}

// close unmaps the regions kept and keeps no more.
func (p *recycler) close() {
	p.mu.Lock()
	free := p.free
	p.free, p.closed = nil, true
	p.mu.Unlock()
	for _, g := range free {
		g.unmap()
	}
}
