package pool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gust "github.com/gustfaas/gust"
)

// acquireAsync runs Acquire on its own goroutine so a test can bound a
// call that, broken, would never return.
func acquireAsync(p *Pool, ctx context.Context) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		l, err := p.Acquire(ctx)
		ch <- acquired{l, err}
	}()
	return ch
}

type acquired struct {
	l   *Lease
	err error
}

func await(t *testing.T, what string, ch <-chan acquired) acquired {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return", what)
		return acquired{}
	}
}

// An instance whose initialization never ends must not hold a call, its
// concurrency slot and its memory forever: the start is bounded by
// StartTimeout and the call gets ETIMEOUT (504).
func TestColdStartThatNeverFinishesTimesOut(t *testing.T) {
	m := newFakeModule(t)
	m.gate = make(chan struct{}) // never opened: _initialize loops forever
	b := NewBudget(512)
	p := newTestPool(t, m, Config{MemoryMB: 128, MaxConcurrency: 1, StartTimeout: 20 * time.Millisecond, Budget: b})
	a := await(t, "a cold start that never finishes", acquireAsync(p, context.Background()))
	wantCode(t, a.err, gust.ETIMEOUT)
	if msg := gust.ErrorMessage(a.err); !strings.Contains(msg, "did not finish starting within 20ms") {
		t.Errorf("message %q does not say the start timed out", msg)
	}
	if s := p.Stats(); s.InFlight != 0 || s.Starting != 0 || s.Instances != 0 || s.MemoryMB != 0 {
		t.Errorf("after a start timed out: %+v", s)
	}
	if u := b.Stats().UsedMB; u != 0 {
		t.Errorf("budget used %d MB after a start timed out", u)
	}
}

// Prewarm runs under context.Background(): a start that never finishes
// must still end, or Drain (a rollback) would wait for it forever.
func TestPrewarmThatNeverFinishesTimesOutAndDrainEnds(t *testing.T) {
	m := newFakeModule(t)
	m.gate = make(chan struct{})
	p := New(m, Config{Function: "fn", Version: 1, MinInstances: 1, StartTimeout: 20 * time.Millisecond, Interval: -1})
	done := make(chan error, 1)
	go func() { done <- p.Prewarm(context.Background()) }()
	select {
	case err := <-done:
		wantCode(t, err, gust.ETIMEOUT)
	case <-time.After(5 * time.Second):
		t.Fatal("Prewarm of an instance that never starts did not return")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Drain(ctx); err != nil {
		t.Fatalf("Drain after a start timed out: %v", err)
	}
	if !m.closed.Load() {
		t.Error("module not closed")
	}
}

// A client that hangs up during a cold start does not throw the start
// away: the instance joins the pool warm, and the call ends EUNAVAILABLE
// (not a function error).
func TestColdStartOutlivesCallerHangUp(t *testing.T) {
	m := newFakeModule(t)
	gate := make(chan struct{})
	m.gate, m.entered = gate, make(chan struct{}, 1)
	p := newTestPool(t, m, Config{MaxConcurrency: 1})
	ctx, cancel := context.WithCancel(context.Background())
	ch := acquireAsync(p, ctx)
	<-m.entered
	cancel()
	close(gate)
	a := await(t, "Acquire whose caller hung up", ch)
	wantCode(t, a.err, gust.EUNAVAILABLE)
	if !errors.Is(a.err, context.Canceled) {
		t.Errorf("error %v does not wrap the caller's cancellation", a.err)
	}
	if s := p.Stats(); s.Instances != 1 || s.Idle != 1 || s.InFlight != 0 || s.Starting != 0 {
		t.Fatalf("the started instance did not join the pool idle: %+v", s)
	}
	l := mustAcquire(t, p)
	if l.Cold() {
		t.Error("the next call did not get the instance started for the caller that left")
	}
	l.Release(nil)
}

// The instance started for a caller that hung up goes to the oldest
// waiter, warm.
func TestColdStartAfterHangUpServesWaiter(t *testing.T) {
	m := newFakeModule(t)
	gate := make(chan struct{})
	m.gate, m.entered = gate, make(chan struct{}, 1)
	p := newTestPool(t, m, Config{MaxConcurrency: 1, QueueTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	first := acquireAsync(p, ctx)
	<-m.entered
	second := acquireAsync(p, context.Background())
	waitFor(t, "a waiter", func() bool { return p.Stats().Waiting == 1 })
	cancel()
	close(gate)
	wantCode(t, await(t, "the caller that hung up", first).err, gust.EUNAVAILABLE)
	a := await(t, "the waiter", second)
	if a.err != nil {
		t.Fatalf("waiter: %v", a.err)
	}
	if a.l.Cold() || m.started.Load() != 1 {
		t.Errorf("the waiter started its own instance (cold %v, %d starts)", a.l.Cold(), m.started.Load())
	}
	a.l.Release(nil)
}

func TestConfigForStartTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		want    time.Duration
	}{
		{0, gust.DefaultTimeout}, // the default function timeout, 30s, is the larger
		{time.Second, DefaultStartTimeout},
		{2 * time.Minute, 2 * time.Minute},
	} {
		v := &gust.Version{Function: "hello", Number: 1, Spec: gust.Spec{Timeout: gust.Duration(tc.timeout)}}
		if got := ConfigFor(v, nil, nil).StartTimeout; got != tc.want {
			t.Errorf("timeout %s: StartTimeout %s, want %s", tc.timeout, got, tc.want)
		}
	}
	if got := newTestPool(t, newFakeModule(t), Config{}).Config().StartTimeout; got != DefaultStartTimeout {
		t.Errorf("New's default StartTimeout %s, want %s", got, DefaultStartTimeout)
	}
}
