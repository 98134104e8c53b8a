package pool

import (
	"context"
	"strings"
	"testing"
	"time"

	gust "github.com/gustfaas/gust"
)

// An instance larger than the whole node budget can never start (the
// version was deployed before the node restarted with a smaller
// --memory-budget): every call is refused with EINVALID naming both
// figures and their flags, never with a 429 that says "retry later", and
// nothing is started, reserved or counted as a throttle. Prewarm says so;
// the background decision stops trying.
func TestBudgetTooSmallForOneInstance(t *testing.T) {
	b := NewBudget(64)
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{Function: "big", Version: 3, MemoryMB: 128, MinInstances: 1, Budget: b})
	for i := 0; i < 2; i++ {
		_, err := p.Acquire(context.Background())
		wantCode(t, err, gust.EINVALID)
		msg := gust.ErrorMessage(err)
		for _, want := range []string{"big version 3", "128 MB", "64 MB", "--memory", "gust serve --memory-budget"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not name %q", msg, want)
			}
		}
		if ColdStart(err) {
			t.Error("a call refused before any start is recorded as a cold start")
		}
	}
	wantCode(t, p.Prewarm(context.Background()), gust.EINVALID)
	if err := p.Reconcile(context.Background()); err != nil {
		t.Errorf("Reconcile: %v", err)
	}
	if s := p.Stats(); s.Throttled != 0 || s.InFlight != 0 || s.Starting != 0 || s.MemoryMB != 0 {
		t.Errorf("after refusals: %+v", s)
	}
	if n := m.started.Load() + m.making.Load(); n != 0 {
		t.Errorf("%d instances started", n)
	}
	if u := b.Stats().UsedMB; u != 0 {
		t.Errorf("budget used %d MB", u)
	}

	// A shortage that passes (the budget in use) is still a 429.
	small := newTestPool(t, newFakeModule(t), Config{Function: "small", MemoryMB: 64, MaxConcurrency: 2, Budget: b})
	l := mustAcquire(t, small)
	_, err := small.Acquire(context.Background())
	wantCode(t, err, gust.ECAPACITY)
	l.Release(nil)
}

// Stats().Throttled counts the callers refused with a throttle (ETHROTTLED
// at once or after the queue timeout, or ECAPACITY), not AcquireQueued's
// refusals: those callers (async events) wait in their own queue and ask
// again, which is no throttle.
func TestThrottledCountsOnlyRealThrottles(t *testing.T) {
	for _, queue := range []time.Duration{0, 5 * time.Millisecond} {
		t.Run("queue "+queue.String(), func(t *testing.T) {
			p := newTestPool(t, newFakeModule(t), Config{MaxConcurrency: 1, QueueTimeout: queue})
			hold := mustAcquire(t, p)
			defer hold.Release(nil)
			for i := 0; i < 3; i++ {
				_, err := p.AcquireQueued(context.Background())
				wantCode(t, err, gust.ETHROTTLED)
			}
			if s := p.Stats(); s.Throttled != 0 {
				t.Fatalf("AcquireQueued's waits counted as %d throttles", s.Throttled)
			}
			_, err := p.Acquire(context.Background())
			wantCode(t, err, gust.ETHROTTLED)
			if s := p.Stats(); s.Throttled != 1 {
				t.Fatalf("Throttled = %d after one throttled Acquire, want 1", s.Throttled)
			}
		})
	}
	t.Run("capacity", func(t *testing.T) {
		b := NewBudget(128)
		p := newTestPool(t, newFakeModule(t), Config{MemoryMB: 128, MaxConcurrency: 2, Budget: b})
		hold := mustAcquire(t, p)
		defer hold.Release(nil)
		_, err := p.AcquireQueued(context.Background())
		wantCode(t, err, gust.ECAPACITY)
		if s := p.Stats(); s.Throttled != 0 {
			t.Fatalf("AcquireQueued's wait for memory counted as %d throttles", s.Throttled)
		}
		_, err = p.Acquire(context.Background())
		wantCode(t, err, gust.ECAPACITY)
		if s := p.Stats(); s.Throttled != 1 {
			t.Fatalf("Throttled = %d after a caller was refused for memory, want 1", s.Throttled)
		}
	})
}

// A call whose cold start failed, timed out or finished after the caller
// left was a cold start: ColdStart says so, so the invoker records it.
func TestColdStartTellsFailedStarts(t *testing.T) {
	t.Run("init failed", func(t *testing.T) {
		m := newFakeModule(t)
		m.failNext = 1
		p := newTestPool(t, m, Config{MaxConcurrency: 1})
		_, err := p.Acquire(context.Background())
		wantCode(t, err, gust.EFUNCTION)
		if !ColdStart(err) {
			t.Errorf("failed start %v: ColdStart false", err)
		}
	})
	t.Run("timed out", func(t *testing.T) {
		m := newFakeModule(t)
		m.gate = make(chan struct{})
		p := newTestPool(t, m, Config{MaxConcurrency: 1, StartTimeout: 10 * time.Millisecond})
		a := await(t, "a start that times out", acquireAsync(p, context.Background()))
		wantCode(t, a.err, gust.ETIMEOUT)
		if !ColdStart(a.err) {
			t.Errorf("timed-out start %v: ColdStart false", a.err)
		}
	})
	t.Run("caller left", func(t *testing.T) {
		m := newFakeModule(t)
		gate := make(chan struct{})
		m.gate, m.entered = gate, make(chan struct{}, 1)
		p := newTestPool(t, m, Config{MaxConcurrency: 1})
		ctx, cancel := context.WithCancel(context.Background())
		ch := acquireAsync(p, ctx)
		<-m.entered
		cancel()
		close(gate)
		a := await(t, "a start whose caller left", ch)
		wantCode(t, a.err, gust.EUNAVAILABLE)
		if !ColdStart(a.err) {
			t.Errorf("start the caller left %v: ColdStart false", a.err)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		p := newTestPool(t, newFakeModule(t), Config{MaxConcurrency: 1})
		hold := mustAcquire(t, p)
		defer hold.Release(nil)
		_, err := p.Acquire(context.Background())
		wantCode(t, err, gust.ETHROTTLED)
		if ColdStart(err) {
			t.Error("a throttle is not a cold start")
		}
	})
}

// A driver that panics while starting an instance (a bug) must not take
// the call's concurrency slot and the instance's memory with it: the HTTP
// server recovers a handler's panic and carries on, and the function
// would answer 429 for good.
func TestDriverPanicInStartLeaksNothing(t *testing.T) {
	m := newFakeModule(t)
	m.panicNext = 1
	b := NewBudget(128)
	p := newTestPool(t, m, Config{MemoryMB: 128, MaxConcurrency: 1, Budget: b})
	var panicked any
	_, err := func() (_ *Lease, err error) {
		defer func() { panicked = recover() }()
		return p.Acquire(context.Background())
	}()
	if panicked != nil {
		t.Fatalf("Acquire panicked: %v", panicked)
	}
	wantCode(t, err, gust.EINTERNAL)
	if s := p.Stats(); s.InFlight != 0 || s.Starting != 0 || s.MemoryMB != 0 {
		t.Errorf("after a start panicked: %+v", s)
	}
	if u := b.Stats().UsedMB; u != 0 {
		t.Errorf("budget used %d MB after a start panicked", u)
	}
	l := mustAcquire(t, p)
	l.Release(nil)
}
