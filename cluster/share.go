package cluster

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Share is a node's part of a max concurrency of max across live nodes:
// ceil(max/live), at least 1. Rounding up may let the cluster as a whole
// run up to live-1 calls over max; rounding down could leave a function
// with a max below the node count unable to run anywhere.
func Share(max, live int) int {
	if live < 1 {
		live = 1
	}
	if max < 1 {
		return 1
	}
	return (max + live - 1) / live
}

// gate counts the calls in flight on this node per function version and
// admits them up to a share. The share is passed on every call, not stored,
// so a change of membership applies to the next call.
type gate struct {
	mu   sync.Mutex
	busy map[string]*slot
}

type slot struct {
	n    int
	wake chan struct{} // closed and replaced whenever n goes down
}

func newGate() *gate { return &gate{busy: map[string]*slot{}} }

func gateKey(function string, version int) string {
	return function + "@" + strconv.Itoa(version)
}

func (g *gate) slotLocked(k string) *slot {
	s := g.busy[k]
	if s == nil {
		s = &slot{wake: make(chan struct{})}
		g.busy[k] = s
	}
	return s
}

// tryAcquire takes a place under share without waiting. A share of 0 means
// no limit (a lone node leaves limits to its pool).
func (g *gate) tryAcquire(k string, share int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.slotLocked(k)
	if share > 0 && s.n >= share {
		return false
	}
	s.n++
	return true
}

// acquire waits up to wait (and ctx) for a place under share() — asked
// again on every wake, since membership may change while waiting.
func (g *gate) acquire(ctx context.Context, k string, share func() int, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		g.mu.Lock()
		s := g.slotLocked(k)
		if sh := share(); sh <= 0 || s.n < sh {
			s.n++
			g.mu.Unlock()
			return true
		}
		wake := s.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (g *gate) release(k string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.busy[k]
	if s == nil {
		return
	}
	s.n--
	close(s.wake)
	s.wake = make(chan struct{})
	if s.n <= 0 {
		delete(g.busy, k)
	}
}

func (g *gate) count(k string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.busy[k]; s != nil {
		return s.n
	}
	return 0
}

func (g *gate) snapshot() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.busy) == 0 {
		return nil
	}
	out := make(map[string]int, len(g.busy))
	for k, s := range g.busy {
		out[k] = s.n
	}
	return out
}
