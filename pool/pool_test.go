package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gust "github.com/gustfaas/gust"
)

// newTestPool returns a pool with no background loop unless cfg sets
// Interval, drained when the test ends.
func newTestPool(t *testing.T, m *fakeModule, cfg Config) *Pool {
	t.Helper()
	if cfg.Function == "" {
		cfg.Function = "fn"
	}
	if cfg.Version == 0 {
		cfg.Version = 1
	}
	if cfg.Interval == 0 {
		cfg.Interval = -1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := New(m, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
		if n := m.live.Load(); n != 0 {
			t.Errorf("%d instances left open after Drain", n)
		}
		if !m.closed.Load() {
			t.Error("module not closed after Drain")
		}
	})
	return p
}

func mustAcquire(t *testing.T, p *Pool) *Lease {
	t.Helper()
	l, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return l
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := gust.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func TestAcquireReleaseConcurrentNeverShares(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 8, QueueTimeout: time.Minute})
	const goroutines, rounds = 50, 100
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				l, err := p.Acquire(context.Background())
				if err != nil {
					failures.Add(1)
					t.Errorf("Acquire: %v", err)
					return
				}
				err = invoke(t, l)
				if err == nil && (g+i)%13 == 0 {
					err = errors.New("the call trapped") // exercise discard under load
				}
				l.Release(err)
			}
		}()
	}
	wg.Wait()
	s := p.Stats()
	if s.InFlight != 0 || s.Busy != 0 || s.Waiting != 0 || s.Starting != 0 {
		t.Errorf("after all releases: %+v", s)
	}
	if s.Instances > 8 {
		t.Errorf("%d instances, more than max concurrency 8", s.Instances)
	}
	if got := m.live.Load(); got != int64(s.Instances) {
		t.Errorf("%d live instances, pool reports %d", got, s.Instances)
	}
}

func TestBurstOnlySucceedsOrThrottles(t *testing.T) {
	m := newFakeModule(t)
	m.delay = 2 * time.Millisecond
	p := newTestPool(t, m, Config{MaxConcurrency: 2, QueueTimeout: 5 * time.Millisecond})
	const burst = 40
	var wg sync.WaitGroup
	var ok, throttled atomic.Int64
	start := make(chan struct{})
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l, err := p.Acquire(context.Background())
			switch gust.ErrorCode(err) {
			case "":
				ok.Add(1)
				l.Release(invoke(t, l))
			case gust.ETHROTTLED:
				throttled.Add(1)
				if !strings.Contains(err.Error(), "function fn is at its max concurrency of 2; retry later") {
					t.Errorf("throttle message: %q", err)
				}
			default:
				t.Errorf("Acquire: %v (code %s), want success or throttled", err, gust.ErrorCode(err))
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load()+throttled.Load() != burst {
		t.Fatalf("%d ok + %d throttled != %d", ok.Load(), throttled.Load(), burst)
	}
	if ok.Load() < 2 {
		t.Errorf("%d succeeded; the first two always start", ok.Load())
	}
	s := p.Stats()
	if s.Throttled != throttled.Load() {
		t.Errorf("Stats().Throttled = %d, want %d", s.Throttled, throttled.Load())
	}
	if s.InFlight != 0 || s.Waiting != 0 || s.Instances > 2 {
		t.Errorf("after the burst: %+v", s)
	}
}

func TestQueueIsFIFO(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 1, QueueTimeout: time.Minute})
	hold := mustAcquire(t, p)

	const n = 10
	const quitter = 3 // gives up while queued; the others keep their order
	order := make(chan int, n)
	errs := make(chan error, n)
	ctxQuit, cancelQuit := context.WithCancel(context.Background())
	defer cancelQuit()
	for i := 0; i < n; i++ {
		ctx := context.Background()
		if i == quitter {
			ctx = ctxQuit
		}
		go func() {
			l, err := p.Acquire(ctx)
			if err != nil {
				errs <- err
				return
			}
			if l.QueueWait() < 0 {
				t.Errorf("negative queue wait %s", l.QueueWait())
			}
			order <- i
			l.Release(nil)
		}()
		waitFor(t, fmt.Sprintf("%d waiters", i+1), func() bool { return p.Stats().Waiting == i+1 })
	}
	cancelQuit()
	waitFor(t, "the quitter to leave the queue", func() bool { return p.Stats().Waiting == n-1 })
	wantCode(t, <-errs, gust.ETHROTTLED)

	hold.Release(nil)
	for want := 0; want < n; want++ {
		if want == quitter {
			continue
		}
		if got := <-order; got != want {
			t.Fatalf("waiter %d served, want %d", got, want)
		}
	}
	if s := p.Stats(); s.ColdStarts != 1 || s.Instances != 1 || s.Throttled != 1 {
		t.Errorf("stats %+v: want 1 cold start, 1 instance, 1 throttled", s)
	}
}

func TestQueueTimeoutThrottles(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 1, QueueTimeout: 10 * time.Millisecond})
	hold := mustAcquire(t, p)
	defer hold.Release(nil)
	_, err := p.Acquire(context.Background())
	wantCode(t, err, gust.ETHROTTLED)
	if s := p.Stats(); s.Waiting != 0 || s.Throttled != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestNoQueueThrottlesAtOnce(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 1})
	hold := mustAcquire(t, p)
	defer hold.Release(nil)
	_, err := p.Acquire(context.Background())
	wantCode(t, err, gust.ETHROTTLED)
}

func TestReleaseWithErrorDiscards(t *testing.T) {
	m := newFakeModule(t)
	b := NewBudget(1024)
	p := newTestPool(t, m, Config{MemoryMB: 128, MaxConcurrency: 4, Budget: b})
	l := mustAcquire(t, p)
	if !l.Cold() {
		t.Error("first lease is not cold")
	}
	first := l.Instance()
	l.Release(gust.Errorf(gust.ETIMEOUT, "timed out"))
	if m.closedN.Load() != 1 {
		t.Fatalf("%d instances closed, want the failed one", m.closedN.Load())
	}
	if s := p.Stats(); s.Instances != 0 || s.MemoryMB != 0 || s.InFlight != 0 {
		t.Errorf("after discard: %+v", s)
	}
	if u := b.Stats().UsedMB; u != 0 {
		t.Errorf("budget used %d MB after discard, want 0", u)
	}

	l = mustAcquire(t, p)
	if !l.Cold() || l.Instance() == first {
		t.Error("the lease after a discard reused the failed instance")
	}
	second := l.Instance()
	l.Release(nil)
	l = mustAcquire(t, p)
	if l.Cold() || l.Instance() != second {
		t.Error("a healthy instance was not reused warm")
	}
	l.Release(nil)
	if s := p.Stats(); s.ColdStarts != 2 || s.Idle != 1 || s.MemoryMB != 128 {
		t.Errorf("stats %+v", s)
	}
}

// A call whose error says the instance is still healthy (a handler that
// raised, reported by its runtime) leaves the instance warm: the next
// caller, a waiter first, gets it without a cold start, and its memory
// stays reserved once, inside the budget.
func TestReleaseWithHealthyErrorKeepsWarm(t *testing.T) {
	m := newFakeModule(t)
	b := NewBudget(1024)
	p := newTestPool(t, m, Config{MemoryMB: 128, MaxConcurrency: 1, QueueTimeout: 5 * time.Second, Budget: b})
	l := mustAcquire(t, p)
	first := l.Instance()
	got := make(chan *Lease, 1)
	go func() {
		l, err := p.Acquire(context.Background())
		if err != nil {
			t.Errorf("queued Acquire: %v", err)
		}
		got <- l
	}()
	waitFor(t, "a queued caller", func() bool { return p.Stats().Waiting == 1 })
	l.Release(gust.WrapError(gust.EFUNCTION, gust.ErrInstanceHealthy, "function error: ValueError: boom"))
	l = <-got
	if l == nil {
		t.FailNow()
	}
	if l.Cold() || l.Instance() != first {
		t.Error("the waiter did not get the healthy instance warm")
	}
	// Wrapped further on the way up, the mark still counts.
	l.Release(fmt.Errorf("invoke: %w", gust.WrapError(gust.EFUNCTION, gust.ErrInstanceHealthy, "function error")))
	l = mustAcquire(t, p)
	if l.Cold() || l.Instance() != first {
		t.Error("a healthy instance was not reused warm")
	}
	l.Release(nil)
	if n := m.closedN.Load(); n != 0 {
		t.Errorf("%d instances closed, want none", n)
	}
	if s := p.Stats(); s.Instances != 1 || s.Idle != 1 || s.ColdStarts != 1 || s.MemoryMB != 128 {
		t.Errorf("stats %+v", s)
	}
	if u := b.Stats().UsedMB; u != 128 {
		t.Errorf("budget used %d MB, want the one instance's 128", u)
	}
	// Any other error still discards it.
	l = mustAcquire(t, p)
	l.Release(gust.Errorf(gust.EFUNCTION, "trapped"))
	if n := m.closedN.Load(); n != 1 {
		t.Errorf("%d instances closed after a plain error, want 1", n)
	}
	if u := b.Stats().UsedMB; u != 0 {
		t.Errorf("budget used %d MB after the discard, want 0", u)
	}
}

// While the pool drains, a healthy instance is closed like any other.
func TestReleaseWithHealthyErrorWhileDraining(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 1})
	l := mustAcquire(t, p)
	drained := make(chan error, 1)
	go func() { drained <- p.Drain(context.Background()) }()
	waitFor(t, "the drain to start", func() bool {
		_, err := p.Acquire(context.Background())
		return gust.ErrorCode(err) == gust.EUNAVAILABLE
	})
	l.Release(gust.WrapError(gust.EFUNCTION, gust.ErrInstanceHealthy, "function error"))
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if n := m.closedN.Load(); n != 1 {
		t.Errorf("%d instances closed, want 1", n)
	}
}

func TestWarmPathIsMostRecentlyUsedFirst(t *testing.T) {
	m := newFakeModule(t)
	clock := newFakeClock()
	p := newTestPool(t, m, Config{MaxConcurrency: 3, Clock: clock.Now})
	ls := []*Lease{mustAcquire(t, p), mustAcquire(t, p), mustAcquire(t, p)}
	for _, l := range ls {
		clock.Advance(time.Second)
		l.Release(nil)
	}
	l := mustAcquire(t, p)
	defer l.Release(nil)
	if l.Instance() != m.instance(2) {
		t.Errorf("got instance %d, want the most recently used (2)", l.Instance().(*fakeInstance).id)
	}
}

func TestColdStartFailure(t *testing.T) {
	m := newFakeModule(t)
	m.failNext = 1
	b := NewBudget(512)
	p := newTestPool(t, m, Config{MemoryMB: 128, MaxConcurrency: 1, Budget: b})
	_, err := p.Acquire(context.Background())
	wantCode(t, err, gust.EFUNCTION)
	if s := p.Stats(); s.InFlight != 0 || s.Starting != 0 || s.Instances != 0 || s.MemoryMB != 0 || s.ColdStarts != 0 {
		t.Errorf("after a failed start: %+v", s)
	}
	if u := b.Stats().UsedMB; u != 0 {
		t.Errorf("budget used %d MB after a failed start", u)
	}
	// The failed start did not keep the only slot.
	l := mustAcquire(t, p)
	l.Release(nil)
}

func TestColdStartFailureWakesWaiter(t *testing.T) {
	m := newFakeModule(t)
	gate := make(chan struct{})
	m.gate, m.entered, m.failNext = gate, make(chan struct{}, 2), 1
	p := newTestPool(t, m, Config{MaxConcurrency: 1, QueueTimeout: time.Minute})
	first := make(chan error, 1)
	go func() {
		_, err := p.Acquire(context.Background())
		first <- err
	}()
	<-m.entered
	second := make(chan *Lease, 1)
	go func() {
		l, err := p.Acquire(context.Background())
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		second <- l
	}()
	waitFor(t, "a waiter", func() bool { return p.Stats().Waiting == 1 })
	close(gate)
	wantCode(t, <-first, gust.EFUNCTION)
	l := <-second
	if l == nil {
		t.FailNow()
	}
	if !l.Cold() {
		t.Error("the waiter did not start its own instance")
	}
	l.Release(nil)
}

func TestColdStartDoesNotBlockWarmAcquire(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 4, MinInstances: 1})
	if err := p.Prewarm(context.Background()); err != nil {
		t.Fatal(err)
	}
	warm := mustAcquire(t, p)

	gate := make(chan struct{})
	m.mu.Lock()
	m.gate, m.entered = gate, make(chan struct{}, 1)
	m.mu.Unlock()
	coldDone := make(chan *Lease, 1)
	go func() {
		l, err := p.Acquire(context.Background())
		if err != nil {
			t.Errorf("cold Acquire: %v", err)
		}
		coldDone <- l
	}()
	<-m.entered // the cold start is under way, outside the pool lock
	if s := p.Stats(); s.Starting != 1 || s.InFlight != 2 {
		t.Errorf("while starting: %+v", s)
	}
	warm.Release(nil)
	again := mustAcquire(t, p) // must not wait for the cold start
	if again.Cold() {
		t.Error("warm Acquire was cold")
	}
	again.Release(nil)
	close(gate)
	if l := <-coldDone; l != nil {
		if !l.Cold() {
			t.Error("the blocked Acquire was not cold")
		}
		l.Release(nil)
	}
}

func TestPrewarmAndMinInstances(t *testing.T) {
	m := newFakeModule(t)
	clock := newFakeClock()
	p := newTestPool(t, m, Config{MaxConcurrency: 5, MinInstances: 2, IdleTimeout: time.Minute, Clock: clock.Now})
	if err := p.Prewarm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Instances != 2 || s.Idle != 2 || s.ColdStarts != 0 {
		t.Fatalf("after Prewarm: %+v", s)
	}
	if err := p.Prewarm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := m.started.Load(); n != 2 {
		t.Fatalf("a second Prewarm started more: %d starts", n)
	}
	l := mustAcquire(t, p)
	if l.Cold() {
		t.Error("lease on a prewarmed instance is cold")
	}
	l.Release(errors.New("trapped"))
	if s := p.Stats(); s.Instances != 1 {
		t.Fatalf("after discard: %+v", s)
	}
	// The loop's decision restores the minimum...
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Instances != 2 {
		t.Fatalf("Reconcile did not restore the minimum: %+v", s)
	}
	// ...and never reaps it.
	clock.Advance(time.Hour)
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Instances != 2 {
		t.Fatalf("min instances reaped: %+v", s)
	}
}

// Starts for MinInstances are provisioned (the driver tells the
// function, as Lambda's provisioned concurrency); a start for a call is
// not.
func TestProvisionedStarts(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 5, MinInstances: 1})
	if err := p.Prewarm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := m.provisioned.Load(); n != 1 {
		t.Fatalf("%d of %d starts for MinInstances provisioned, want 1", n, m.started.Load())
	}
	busy := mustAcquire(t, p)
	cold := mustAcquire(t, p)
	if !cold.Cold() {
		t.Fatal("the second lease did not start an instance")
	}
	if n := m.provisioned.Load(); n != 1 {
		t.Errorf("a start for a call was provisioned (%d provisioned of %d)", n, m.started.Load())
	}
	cold.Release(errors.New("trapped"))
	busy.Release(errors.New("trapped"))
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, started := m.provisioned.Load(), m.started.Load(); n != 2 || started != 3 {
		t.Errorf("Reconcile's start: %d provisioned of %d starts, want 2 of 3", n, started)
	}
}

func TestPrewarmFailure(t *testing.T) {
	m := newFakeModule(t)
	m.failNext = 1
	p := newTestPool(t, m, Config{MinInstances: 3})
	wantCode(t, p.Prewarm(context.Background()), gust.EFUNCTION)
	if s := p.Stats(); s.Starting != 0 || s.Instances != 0 {
		t.Fatalf("after a failed Prewarm: %+v", s)
	}
	if err := p.Prewarm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Instances != 3 {
		t.Fatalf("after Prewarm: %+v", s)
	}
}

func TestIdleReaping(t *testing.T) {
	m := newFakeModule(t)
	clock := newFakeClock()
	p := newTestPool(t, m, Config{MaxConcurrency: 5, MinInstances: 1, IdleTimeout: time.Minute, Clock: clock.Now})
	ls := []*Lease{mustAcquire(t, p), mustAcquire(t, p), mustAcquire(t, p), mustAcquire(t, p)}
	for _, l := range ls[:3] {
		clock.Advance(time.Second)
		l.Release(nil)
	}
	busy := ls[3]
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Instances != 4 {
		t.Fatalf("reaped before the idle timeout: %+v", s)
	}
	clock.Advance(time.Minute)
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Busy counts toward the minimum of one, so all three idle ones go.
	if s := p.Stats(); s.Instances != 1 || s.Busy != 1 || s.Idle != 0 {
		t.Fatalf("after reaping: %+v", s)
	}
	for i := 0; i < 3; i++ {
		if !m.instance(i).closed.Load() {
			t.Errorf("idle instance %d not closed", i)
		}
	}
	clock.Advance(time.Second)
	busy.Release(nil)
	clock.Advance(time.Hour)
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Instances != 1 || s.Idle != 1 {
		t.Fatalf("min instance reaped: %+v", s)
	}
}

func TestBackgroundLoopReapsAndKeepsMinimum(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 5, MinInstances: 1, IdleTimeout: 20 * time.Millisecond, Interval: 10 * time.Millisecond})
	waitFor(t, "the loop to start the minimum", func() bool { return p.Stats().Instances == 1 })
	a, b := mustAcquire(t, p), mustAcquire(t, p)
	a.Release(nil)
	b.Release(nil)
	waitFor(t, "the loop to reap down to the minimum", func() bool { return p.Stats().Instances == 1 })
}

func TestBudgetReclaimsLeastRecentlyUsedIdle(t *testing.T) {
	clock := newFakeClock()
	b := NewBudget(256)
	ma, mb := newFakeModule(t), newFakeModule(t)
	pa := newTestPool(t, ma, Config{Function: "a", MemoryMB: 128, MaxConcurrency: 4, Budget: b, Clock: clock.Now})
	pb := newTestPool(t, mb, Config{Function: "b", MemoryMB: 128, MaxConcurrency: 4, Budget: b, Clock: clock.Now})

	a1, a2 := mustAcquire(t, pa), mustAcquire(t, pa)
	clock.Advance(time.Second)
	a1.Release(nil) // least recently used
	clock.Advance(time.Second)
	a2.Release(nil)
	if s := b.Stats(); s.UsedMB != 256 || s.TotalMB != 256 || s.Pools != 2 {
		t.Fatalf("budget %+v", s)
	}

	lb := mustAcquire(t, pb)
	if !ma.instance(0).closed.Load() || ma.instance(1).closed.Load() {
		t.Fatalf("reclaimed the wrong instance: a1 closed=%v a2 closed=%v", ma.instance(0).closed.Load(), ma.instance(1).closed.Load())
	}
	if s := pa.Stats(); s.Instances != 1 || s.MemoryMB != 128 {
		t.Fatalf("pool a after reclaim: %+v", s)
	}
	if s := b.Stats(); s.UsedMB != 256 {
		t.Fatalf("budget after reclaim: %+v", s)
	}

	// Everything is busy now: nothing to reclaim.
	la := mustAcquire(t, pa)
	if la.Cold() {
		t.Error("pool a started instead of using its idle instance")
	}
	_, err := pb.Acquire(context.Background())
	wantCode(t, err, gust.ECAPACITY)
	if !strings.Contains(err.Error(), "node memory budget of 256 MB exhausted (256 MB in use)") {
		t.Errorf("capacity message: %q", err)
	}
	if s := pb.Stats(); s.InFlight != 1 || s.Starting != 0 || s.MemoryMB != 128 {
		t.Errorf("pool b after refusal: %+v", s)
	}
	la.Release(nil)
	lb.Release(nil)
}

func TestBudgetKeepsOtherPoolsMinimum(t *testing.T) {
	b := NewBudget(256)
	ma, mb := newFakeModule(t), newFakeModule(t)
	pa := newTestPool(t, ma, Config{Function: "a", MemoryMB: 128, MinInstances: 2, Budget: b})
	pb := newTestPool(t, mb, Config{Function: "b", MemoryMB: 128, Budget: b})
	if err := pa.Prewarm(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := pb.Acquire(context.Background())
	wantCode(t, err, gust.ECAPACITY)
	if s := pa.Stats(); s.Instances != 2 {
		t.Fatalf("pool a went below its minimum: %+v", s)
	}
}

// TestBudgetManyPools runs pools that compete for a small budget from many
// goroutines: under -race it checks the Budget/Pool locking, and that every
// call ends in a lease, a throttle or a capacity refusal.
func TestBudgetManyPools(t *testing.T) {
	b := NewBudget(5 * 64)
	const npools = 4
	pools := make([]*Pool, npools)
	for i := range pools {
		pools[i] = newTestPool(t, newFakeModule(t), Config{
			Function: fmt.Sprintf("f%d", i), MemoryMB: 64, MaxConcurrency: 3,
			MinInstances: i % 2, QueueTimeout: time.Millisecond, Budget: b,
		})
	}
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for g := 0; g < 24; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 150; i++ {
				p := pools[r.IntN(npools)]
				l, err := p.Acquire(context.Background())
				switch gust.ErrorCode(err) {
				case "":
					ok.Add(1)
					err = invoke(t, l)
					if err == nil && r.IntN(10) == 0 {
						err = errors.New("trapped")
					}
					l.Release(err)
				case gust.ETHROTTLED, gust.ECAPACITY:
					refused.Add(1)
				default:
					t.Errorf("Acquire: %v", err)
					return
				}
				if r.IntN(20) == 0 {
					if err := p.Reconcile(context.Background()); err != nil && gust.ErrorCode(err) != gust.ECAPACITY {
						t.Errorf("Reconcile: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		t.Error("no call got a lease")
	}
	used := 0
	for _, p := range pools {
		s := p.Stats()
		if s.InFlight != 0 || s.Starting != 0 {
			t.Errorf("pool %s: %+v", p.Function(), s)
		}
		used += s.MemoryMB
	}
	if s := b.Stats(); s.UsedMB != used || s.UsedMB > s.TotalMB {
		t.Errorf("budget %+v, pools hold %d MB", s, used)
	}
}

func TestDrain(t *testing.T) {
	m := newFakeModule(t)
	b := NewBudget(1024)
	p := New(m, Config{Function: "fn", Version: 1, MemoryMB: 32, MaxConcurrency: 3, Budget: b, Interval: -1})
	l1, l2, l3 := mustAcquire(t, p), mustAcquire(t, p), mustAcquire(t, p)
	l3.Release(nil) // one idle, two in flight

	done := make(chan error, 1)
	go func() { done <- p.Drain(context.Background()) }()
	waitFor(t, "the idle instance to close", func() bool { return m.closedN.Load() == 1 })
	_, err := p.Acquire(context.Background())
	wantCode(t, err, gust.EUNAVAILABLE)

	l1.Release(nil)
	if m.closedN.Load() != 2 {
		t.Errorf("an instance released during a drain was kept")
	}
	select {
	case err := <-done:
		t.Fatalf("Drain returned with a lease in flight: %v", err)
	default:
	}
	if m.closed.Load() {
		t.Fatal("module closed with a lease in flight")
	}
	l2.Release(errors.New("trapped"))
	if err := <-done; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if !m.closed.Load() || m.live.Load() != 0 {
		t.Errorf("after Drain: module closed %v, %d live instances", m.closed.Load(), m.live.Load())
	}
	if s := b.Stats(); s.UsedMB != 0 || s.Pools != 0 {
		t.Errorf("budget after Drain: %+v", s)
	}
	if s := p.Stats(); s.Instances != 0 || s.MemoryMB != 0 || s.InFlight != 0 {
		t.Errorf("pool after Drain: %+v", s)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Errorf("second Drain: %v", err)
	}
	wantCode(t, p.Prewarm(context.Background()), gust.EUNAVAILABLE)
}

func TestDrainFailsWaiters(t *testing.T) {
	m := newFakeModule(t)
	p := New(m, Config{Function: "fn", Version: 1, MaxConcurrency: 1, QueueTimeout: time.Minute, Interval: -1})
	hold := mustAcquire(t, p)
	queued := make(chan error, 1)
	go func() {
		_, err := p.Acquire(context.Background())
		queued <- err
	}()
	waitFor(t, "a waiter", func() bool { return p.Stats().Waiting == 1 })
	done := make(chan error, 1)
	go func() { done <- p.Drain(context.Background()) }()
	wantCode(t, <-queued, gust.EUNAVAILABLE)
	hold.Release(nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !m.closed.Load() || m.live.Load() != 0 {
		t.Error("not drained")
	}
}

func TestDrainDuringColdStart(t *testing.T) {
	m := newFakeModule(t)
	gate := make(chan struct{})
	m.gate, m.entered = gate, make(chan struct{}, 1)
	// One slot and no queue: Acquire throttles until the drain starts.
	p := New(m, Config{Function: "fn", Version: 1, MaxConcurrency: 1, Interval: -1})
	got := make(chan *Lease, 1)
	go func() {
		l, err := p.Acquire(context.Background())
		if err != nil {
			t.Errorf("Acquire admitted before the drain: %v", err)
		}
		got <- l
	}()
	<-m.entered
	done := make(chan error, 1)
	go func() { done <- p.Drain(context.Background()) }()
	waitFor(t, "the drain to start", func() bool {
		_, err := p.Acquire(context.Background())
		return gust.ErrorCode(err) == gust.EUNAVAILABLE
	})
	close(gate)
	l := <-got
	if l == nil {
		t.FailNow()
	}
	if err := invoke(t, l); err != nil {
		t.Errorf("call in flight during drain: %v", err)
	}
	l.Release(nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !m.closed.Load() || m.live.Load() != 0 {
		t.Error("not drained")
	}
}

func TestCloseForcesBusyInstances(t *testing.T) {
	m := newFakeModule(t)
	p := New(m, Config{Function: "fn", Version: 1, Interval: 10 * time.Millisecond})
	l := mustAcquire(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !m.closed.Load() || m.live.Load() != 0 {
		t.Fatal("Close left instances or the module open")
	}
	if err := invoke(t, l); gust.ErrorCode(err) != gust.EFUNCTION {
		t.Errorf("call on a force-closed instance: %v", err)
	}
	l.Release(nil)
	if s := p.Stats(); s.InFlight != 0 || s.Instances != 0 {
		t.Errorf("after Close: %+v", s)
	}
}

// A forced Close does not wait for calls in flight, but it cannot close
// the module under an instance that is still starting: a driver's
// NewInstance uses the module's resources (its snapshot's file, its
// memories). It cancels the start, waits for it to return, then closes
// the module.
func TestCloseDuringColdStart(t *testing.T) {
	m := newFakeModule(t)
	gate := make(chan struct{})
	m.gate, m.entered = gate, make(chan struct{}, 1)
	p := New(m, Config{Function: "fn", Version: 1, Interval: -1})
	got := make(chan error, 1)
	go func() {
		l, err := p.Acquire(context.Background())
		if err == nil {
			l.Release(nil)
		}
		got <- err
	}()
	<-m.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The fake reports a Close while its NewInstance runs; this start
	// waits on the gate until its context ends.
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !m.closed.Load() || m.live.Load() != 0 {
		t.Error("Close left instances or the module open")
	}
	if err := <-got; gust.ErrorCode(err) != gust.EUNAVAILABLE {
		t.Errorf("Acquire whose start a forced Close cancelled: %v, want %s", err, gust.EUNAVAILABLE)
	}
}

func TestPerInstanceConcurrency(t *testing.T) {
	m := newFakeModule(t)
	p := newTestPool(t, m, Config{MaxConcurrency: 6, PerInstanceConcurrency: 3})
	var ls []*Lease
	for i := 0; i < 6; i++ {
		ls = append(ls, mustAcquire(t, p))
	}
	if s := p.Stats(); s.Instances != 2 || s.InFlight != 6 || s.ColdStarts != 2 {
		t.Fatalf("six leases at three per instance: %+v", s)
	}
	_, err := p.Acquire(context.Background())
	wantCode(t, err, gust.ETHROTTLED)

	shared := ls[0].Instance()
	var onShared, others []*Lease
	for _, l := range ls {
		if l.Instance() == shared {
			onShared = append(onShared, l)
		} else {
			others = append(others, l)
		}
	}
	if len(onShared) != 3 {
		t.Fatalf("%d leases on the first instance, want 3", len(onShared))
	}
	onShared[0].Release(errors.New("crashed"))
	if s := p.Stats(); s.Instances != 1 {
		t.Fatalf("a failed instance stayed in the pool: %+v", s)
	}
	if m.closedN.Load() != 0 {
		t.Fatal("closed an instance under two leases in flight")
	}
	l := mustAcquire(t, p)
	if !l.Cold() || l.Instance() == shared {
		t.Error("a lease went to the failed instance")
	}
	onShared[1].Release(nil)
	onShared[2].Release(nil)
	if m.closedN.Load() != 1 {
		t.Error("the failed instance was not closed after its last lease")
	}
	l.Release(nil)
	for _, l := range others {
		l.Release(nil)
	}
}

func TestFiveHundredAcquiresThenScaleToZero(t *testing.T) {
	m := newFakeModule(t)
	m.delay = 50 * time.Millisecond
	clock := newFakeClock()
	b := NewBudget(0)
	p := newTestPool(t, m, Config{MemoryMB: 4, MaxConcurrency: 100, QueueTimeout: 20 * time.Millisecond, IdleTimeout: time.Minute, Budget: b, Clock: clock.Now})
	const n = 500
	var wg sync.WaitGroup
	var ok, throttled atomic.Int64
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l, err := p.Acquire(context.Background())
			switch gust.ErrorCode(err) {
			case "":
				ok.Add(1)
				l.Release(invoke(t, l))
			case gust.ETHROTTLED:
				throttled.Add(1)
			default:
				t.Errorf("Acquire: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load()+throttled.Load() != n || ok.Load() == 0 {
		t.Fatalf("%d ok, %d throttled of %d", ok.Load(), throttled.Load(), n)
	}
	s := p.Stats()
	if s.Instances > 100 || s.ColdStarts > 100 || s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("after the burst: %+v", s)
	}
	t.Logf("%d ok, %d throttled, %d instances", ok.Load(), throttled.Load(), s.Instances)

	clock.Advance(time.Minute)
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Instances != 0 || s.MemoryMB != 0 || m.live.Load() != 0 || b.Stats().UsedMB != 0 {
		t.Fatalf("not scaled to zero: %+v, %d live, budget %+v", s, m.live.Load(), b.Stats())
	}
}

func TestConfigFor(t *testing.T) {
	v := &gust.Version{Function: "hello", Number: 3, Spec: gust.Spec{MemoryMB: 64, MinInstances: 1}}
	b := NewBudget(100)
	c := ConfigFor(v, b, nil)
	want := Config{
		Function: "hello", Version: 3, MemoryMB: 64, MaxConcurrency: gust.DefaultMaxConcurrency,
		MinInstances: 1, IdleTimeout: gust.DefaultIdleTimeout, QueueTimeout: gust.DefaultQueueTimeout,
		PerInstanceConcurrency: 1, Budget: b,
	}
	if c.Function != want.Function || c.Version != want.Version || c.MemoryMB != want.MemoryMB ||
		c.MaxConcurrency != want.MaxConcurrency || c.MinInstances != want.MinInstances ||
		c.IdleTimeout != want.IdleTimeout || c.QueueTimeout != want.QueueTimeout ||
		c.PerInstanceConcurrency != want.PerInstanceConcurrency || c.Budget != b {
		t.Errorf("ConfigFor = %+v, want %+v", c, want)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	m := &fakeModule{t: &testing.T{}}
	p := New(m, Config{Function: "bench", Version: 1, MemoryMB: 128, MinInstances: 1, Budget: NewBudget(1024), Interval: -1})
	defer p.Close(context.Background())
	if err := p.Prewarm(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := p.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		l.Release(nil)
	}
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	m := &fakeModule{t: &testing.T{}}
	p := New(m, Config{Function: "bench", Version: 1, MaxConcurrency: 64, QueueTimeout: time.Minute, Interval: -1})
	defer p.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l, err := p.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			l.Release(nil)
		}
	})
}
