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
//
// Every warm call passes through here twice, so the common path allocates
// nothing: keys are structs, not formatted strings; slots stay in the map
// once made (one per version ever called here, a few dozen bytes each); and
// the wake channel is closed and replaced only when a caller waits on it.
type gate struct {
	mu   sync.Mutex
	busy map[gateKey]*slot
}

type slot struct {
	n       int
	waiters int           // callers blocked in acquire on wake
	wake    chan struct{} // closed and replaced when n goes down under waiters
}

// gateKey names a function version in the gate.
type gateKey struct {
	function string
	version  int
}

func keyOf(function string, version int) gateKey { return gateKey{function, version} }

// String is the key's form in Member.Busy: "name@3".
func (k gateKey) String() string { return k.function + "@" + strconv.Itoa(k.version) }

func newGate() *gate { return &gate{busy: map[gateKey]*slot{}} }

func (g *gate) slotLocked(k gateKey) *slot {
	s := g.busy[k]
	if s == nil {
		s = &slot{}
		g.busy[k] = s
	}
	return s
}

// tryAcquire takes a place under share without waiting. A share of 0 means
// no limit (a lone node leaves limits to its pool).
func (g *gate) tryAcquire(k gateKey, share int) bool {
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
func (g *gate) acquire(ctx context.Context, k gateKey, share func() int, wait time.Duration) bool {
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
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		wake := s.wake
		s.waiters++
		g.mu.Unlock()
		var ok bool
		select {
		case <-wake:
			ok = true
		case <-timer.C:
		case <-ctx.Done():
		}
		g.mu.Lock()
		s.waiters--
		g.mu.Unlock()
		if !ok {
			return false
		}
	}
}

func (g *gate) release(k gateKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.busy[k]
	if s == nil || s.n == 0 {
		return
	}
	s.n--
	if s.waiters > 0 && s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

func (g *gate) count(k gateKey) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.busy[k]; s != nil {
		return s.n
	}
	return 0
}

// snapshot returns the calls in flight per version, for heartbeats. Slots
// with none in flight and nobody waiting are dropped here, so versions no
// longer called do not keep theirs.
func (g *gate) snapshot() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out map[string]int
	for k, s := range g.busy {
		if s.n <= 0 {
			if s.waiters == 0 {
				delete(g.busy, k)
			}
			continue
		}
		if out == nil {
			out = make(map[string]int, len(g.busy))
		}
		out[k.String()] = s.n
	}
	return out
}
