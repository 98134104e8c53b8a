package pool

import (
	"context"
	"errors"
	"testing"
	"time"

	gust "github.com/gustfaas/gust"
)

// MaxConcurrency bounds the leases in flight even when an instance could
// carry more: a free slot on a shared instance is not a licence to pass
// the function's limit.
func TestMaxConcurrencyBoundsSharedInstances(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 2, PerInstanceConcurrency: 3})
	l1, l2 := mustAcquire(t, p), mustAcquire(t, p)
	if s := p.Stats(); s.Instances != 1 || s.InFlight != 2 {
		t.Fatalf("two leases on a three-slot instance: %+v", s)
	}
	l3, err := p.Acquire(context.Background())
	if err == nil {
		l3.Release(nil)
	}
	wantCode(t, err, gust.ETHROTTLED)
	if s := p.Stats(); s.InFlight != 2 {
		t.Errorf("in flight past MaxConcurrency 2: %+v", s)
	}
	l1.Release(nil)
	l2.Release(nil)
}

// Queued callers of a pool of shared instances are let in one per freed
// lease, never past MaxConcurrency.
func TestMaxConcurrencyBoundsDispatchToWaiters(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 2, PerInstanceConcurrency: 3, QueueTimeout: time.Minute})
	l1, l2 := mustAcquire(t, p), mustAcquire(t, p)
	w1 := acquireAsync(p, context.Background())
	waitFor(t, "a waiter", func() bool { return p.Stats().Waiting == 1 })
	w2 := acquireAsync(p, context.Background())
	waitFor(t, "two waiters", func() bool { return p.Stats().Waiting == 2 })
	if s := p.Stats(); s.InFlight != 2 {
		t.Fatalf("in flight past MaxConcurrency 2: %+v", s)
	}
	l1.Release(nil)
	a := await(t, "the first waiter", w1)
	if a.err != nil {
		t.Fatalf("first waiter: %v", a.err)
	}
	if s := p.Stats(); s.InFlight != 2 || s.Waiting != 1 {
		t.Errorf("one freed lease let in more than one waiter: %+v", s)
	}
	a.l.Release(nil)
	b := await(t, "the second waiter", w2)
	if b.err != nil {
		t.Fatalf("second waiter: %v", b.err)
	}
	b.l.Release(nil)
	l2.Release(nil)
}

// A discarded instance's memory is back in the budget before the waiter
// handed its place starts an instance: the waiter must not be refused
// ECAPACITY for memory that is already on its way back, however long the
// discarded instance takes to close (a process being killed).
func TestDiscardReturnsMemoryBeforeWaiterStarts(t *testing.T) {
	m := newFakeModule(t)
	b := NewBudget(256)
	p := newTestPool(t, m, Config{MemoryMB: 128, MaxConcurrency: 2, QueueTimeout: time.Minute, Budget: b})
	l1, l2 := mustAcquire(t, p), mustAcquire(t, p)
	w := acquireAsync(p, context.Background())
	waitFor(t, "a waiter", func() bool { return p.Stats().Waiting == 1 })

	closeGate := make(chan struct{})
	m.mu.Lock()
	m.closeGate = closeGate // the discarded instance's Close waits for the waiter
	m.mu.Unlock()
	released := make(chan struct{})
	go func() {
		l1.Release(errors.New("trapped"))
		close(released)
	}()
	a := await(t, "the waiter", w)
	close(closeGate)
	<-released
	if a.err != nil {
		t.Fatalf("queued call after a discard freed a place and its memory: %v", a.err)
	}
	if !a.l.Cold() {
		t.Error("the waiter did not start an instance")
	}
	if s := b.Stats(); s.UsedMB != 256 {
		t.Errorf("budget %+v, want 256 MB used by two instances", s)
	}
	a.l.Release(nil)
	l2.Release(nil)
}
