package wasm

import (
	"context"
	"sync"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/gustfaas/gust"
)

// Shells: instances made ahead for restores.
//
// Instantiating a module in wazero (its function table, globals, memory
// reservation, WASI context and log writers) depends on nothing but the
// module and its spec, and it was most of a restore's cost. So a module
// whose snapshot is ready keeps one instantiated shell aside: memory
// reserved but empty, nothing of the snapshot in it, no guest code run.
// NewInstance takes it and restores into it what makes it an instance:
// the snapshot's memory, the globals, fresh random state, and the
// function's restore hook. Taking a shell starts a goroutine that makes
// the next one, so a spare costs one idle wazero instance per module (a
// few KiB and address space) and a burst of cold starts gets one each
// only while the goroutine keeps up; a NewInstance that finds none,
// and none being made, instantiates inline as before. A shell being made
// is waited for rather than duplicated: it is ready sooner than a new one.
type shells struct {
	mu        sync.Mutex
	spare     *reactor
	preparing chan struct{} // closed when the shell being made is done; nil if none is
	closed    bool
	wg        sync.WaitGroup
}

// newRestoreShell instantiates a shell for a restore: its memory is a
// restorableMemory that holds nothing yet.
func (m *module) newRestoreShell(ctx context.Context) (*reactor, error) {
	r := m.newShell()
	a := &shellAllocator{rec: &m.rec}
	if err := r.instantiate(experimental.WithMemoryAllocator(ctx, a)); err != nil {
		return nil, err
	}
	if a.mem == nil {
		_ = r.mod.Close(ctx)
		return nil, gust.Errorf(gust.EFUNCTION, "reactor instance has no memory of its own")
	}
	r.smem = a.mem
	return r, nil
}

// takeShell returns the spare shell, or nil if there is none, and has the
// next one made.
func (m *module) takeShell() *reactor {
	s := &m.shells
	s.mu.Lock()
	if s.spare == nil && s.preparing != nil {
		done := s.preparing
		s.mu.Unlock()
		<-done
		s.mu.Lock()
	}
	r := s.spare
	s.spare = nil
	s.mu.Unlock()
	m.refillShell()
	return r
}

// refillShell starts making a spare shell unless there is one, one is
// being made, the module is closed or it has no snapshot to restore.
func (m *module) refillShell() {
	if m.snapImage() == nil {
		return
	}
	s := &m.shells
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.spare != nil || s.preparing != nil {
		return
	}
	done := make(chan struct{})
	s.preparing = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx := context.Background()
		r, err := m.newRestoreShell(ctx)
		s.mu.Lock()
		s.preparing = nil
		close(done)
		if err == nil && !s.closed {
			s.spare, r = r, nil
		}
		s.mu.Unlock()
		if err != nil {
			m.d.log.Debug("wasm: making a shell for restores failed; the next restore instantiates inline", "function", m.function, "version", m.version, "err", err)
		}
		if r != nil {
			_ = r.mod.Close(ctx)
		}
	}()
}

// closeShells closes the spare shell, waits for one being made, and makes
// no more.
func (m *module) closeShells(ctx context.Context) {
	s := &m.shells
	s.mu.Lock()
	s.closed = true
	r := s.spare
	s.spare = nil
	s.mu.Unlock()
	s.wg.Wait()
	if r != nil {
		_ = r.mod.Close(ctx)
	}
}
