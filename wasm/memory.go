package wasm

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// memoryPool recycles the linear memories of one module's short-lived
// instances. A WAGI module gets a fresh instance per request; without the
// pool each request allocates its whole memory as a new large Go object,
// and allocating, zeroing, sweeping and returning those to the OS took most
// of a WAGI call. The pool is a sync.Pool, so the GC still frees memories
// that go unused.
type memoryPool struct {
	pool sync.Pool // of *pooledMemory
}

var _ experimental.MemoryAllocator = (*memoryPool)(nil)

func (p *memoryPool) Allocate(capacity, _ uint64) experimental.LinearMemory {
	if m, ok := p.pool.Get().(*pooledMemory); ok {
		return m
	}
	return &pooledMemory{pool: p, buf: make([]byte, 0, capacity)}
}

// pooledMemory is a linear memory whose bytes are zero beyond len(buf), as
// WebAssembly requires of fresh memory: Free zeroes what the instance used.
type pooledMemory struct {
	pool *memoryPool
	buf  []byte
}

func (m *pooledMemory) Reallocate(size uint64) []byte {
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// wazero checks the module's maximum before asking to grow; grow
	// geometrically like append so a growing guest copies rarely.
	b := make([]byte, size, max(size, 2*uint64(cap(m.buf))))
	copy(b, m.buf)
	m.buf = b
	return b
}

func (m *pooledMemory) Free() {
	clear(m.buf)
	m.buf = m.buf[:0]
	m.pool.pool.Put(m)
}
