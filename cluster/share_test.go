package cluster

import (
	"context"
	"testing"
	"time"
)

func TestGateWakesWaiterOnRelease(t *testing.T) {
	g := newGate()
	k := keyOf("hello", 1)
	if !g.tryAcquire(k, 1) {
		t.Fatal("first place refused")
	}
	if g.tryAcquire(k, 1) {
		t.Fatal("second place admitted over a share of 1")
	}
	got := make(chan bool)
	go func() { got <- g.acquire(context.Background(), k, func() int { return 1 }, time.Minute) }()
	// The waiter must be parked before the release for the test to mean
	// anything; wait until it is counted.
	for deadline := time.Now().Add(10 * time.Second); ; {
		g.mu.Lock()
		w := g.busy[k].waiters
		g.mu.Unlock()
		if w == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("waiter never parked")
		}
		time.Sleep(time.Millisecond)
	}
	g.release(k)
	if !<-got {
		t.Fatal("waiter not admitted after a release")
	}
	if n := g.count(k); n != 1 {
		t.Fatalf("count = %d, want 1", n)
	}
	g.release(k)
	if n := g.count(k); n != 0 {
		t.Fatalf("count = %d after the last release, want 0", n)
	}
	g.release(k) // an extra release must not go below zero
	if n := g.count(k); n != 0 {
		t.Fatalf("count = %d after an extra release, want 0", n)
	}
}

func TestGateAcquireGivesUp(t *testing.T) {
	g := newGate()
	k := keyOf("hello", 1)
	g.tryAcquire(k, 1)
	if g.acquire(context.Background(), k, func() int { return 1 }, 10*time.Millisecond) {
		t.Fatal("admitted over the share after the wait")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if g.acquire(ctx, k, func() int { return 1 }, time.Minute) {
		t.Fatal("admitted with a cancelled context")
	}
	g.mu.Lock()
	w := g.busy[k].waiters
	g.mu.Unlock()
	if w != 0 {
		t.Fatalf("waiters = %d after giving up, want 0", w)
	}
}

func TestGateSnapshotDropsIdleSlots(t *testing.T) {
	g := newGate()
	a, b := keyOf("a", 1), keyOf("b", 2)
	g.tryAcquire(a, 0)
	g.tryAcquire(b, 0)
	g.release(b)
	snap := g.snapshot()
	if len(snap) != 1 || snap["a@1"] != 1 {
		t.Fatalf("snapshot = %v, want map[a@1:1]", snap)
	}
	g.mu.Lock()
	_, kept := g.busy[b]
	g.mu.Unlock()
	if kept {
		t.Fatal("idle slot kept after a snapshot")
	}
}

// The warm path takes and gives back a place on every call: it must not
// allocate once the version's slot exists.
func TestGateWarmPathAllocatesNothing(t *testing.T) {
	g := newGate()
	k := keyOf("hello", 1)
	g.tryAcquire(k, 0)
	allocs := testing.AllocsPerRun(100, func() {
		g.tryAcquire(keyOf("hello", 1), 0)
		g.release(keyOf("hello", 1))
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per call, want 0", allocs)
	}
}
