package async

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
)

// slotInvoker gives the invoker it wraps the StartInvoker contract of a
// pool with slots instances, for testing async against that contract: a
// call waits up to wait for a free slot and is then throttled. Through
// InvokeStarted the wait is not recorded; through Invoke it is, as the
// invoker records every throttled call.
type slotInvoker struct {
	Invoker
	slots     chan struct{}
	wait      time.Duration
	waiting   atomic.Int64
	throttles atomic.Int64 // recorded throttles
}

func (s *slotInvoker) acquire() bool {
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (s *slotInvoker) Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error) {
	if !s.acquire() {
		s.throttles.Add(1)
		return nil, gust.Errorf(gust.ETHROTTLED, "no free slot")
	}
	defer func() { <-s.slots }()
	return s.Invoker.Invoke(ctx, v, req)
}

func (s *slotInvoker) InvokeStarted(ctx context.Context, v *gust.Version, req *gust.Request, started func() error) (*gust.Response, error) {
	if !s.acquire() {
		return nil, gust.Errorf(gust.ETHROTTLED, "no free slot")
	}
	defer func() { <-s.slots }()
	if err := started(); err != nil {
		return nil, err
	}
	return s.Invoker.Invoke(ctx, v, req)
}

// An async invocation waiting for a free instance is queued, not running:
// it has no start time, can be canceled, and its waits are neither
// attempts nor recorded throttles (issue 5: "An async invocation that is
// throttled waits; it is not a failure").
func TestWaitingForInstanceStaysQueued(t *testing.T) {
	var slots *slotInvoker
	h := newHarnessWrapped(t, "", nil, func(inv Invoker) Invoker {
		slots = &slotInvoker{Invoker: inv, slots: make(chan struct{}, 1), wait: time.Second}
		return slots
	})
	checkWaitingQueued(t, h, func() int { return int(slots.waiting.Load()) })
	if n := slots.throttles.Load(); n != 0 {
		t.Fatalf("%d throttles recorded for async waits", n)
	}
}

// The same through the real invoker, once it is a StartInvoker.
func TestWaitingForInstanceStaysQueuedInvoker(t *testing.T) {
	h := newHarness(t, "", nil)
	if _, ok := Invoker(h.inv).(StartInvoker); !ok {
		t.Skip("invoke.Invoker has no InvokeStarted: async waits run as plain invocations")
	}
	checkWaitingQueued(t, h, func() int {
		for _, s := range h.inv.Stats() {
			if s.Function == "narrow" {
				return s.Waiting
			}
		}
		return 0
	})
}

// checkWaitingQueued runs one slow invocation of a function of max
// concurrency 1 and two more behind it, which wait (waiting counts them):
// both are queued while they wait, one is canceled and never runs, the
// other runs once, and nothing is recorded for the waits.
func checkWaitingQueued(t *testing.T, h *harness, waiting func() int) {
	t.Helper()
	ctx := context.Background()
	h.deploy("narrow", gust.Spec{MaxConcurrency: 1, Timeout: gust.Duration(10 * time.Second)})
	slow := h.accept("/async/narrow?sleep=3000", nil, nil)
	h.waitStatus(slow, StatusRunning)
	b := h.accept("/async/narrow?sleep=1", nil, nil)
	c := h.accept("/async/narrow?sleep=1", nil, nil)
	eventually(t, "two invocations waiting for the instance", func() bool { return waiting() == 2 })
	for _, id := range []string{b, c} {
		s, err := h.c.Invocation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != StatusQueued || s.StartedAt != nil || s.Attempts != 0 {
			t.Fatalf("waiting for an instance: %+v, want queued, not started, no attempt", s)
		}
	}
	s, err := h.c.CancelInvocation(ctx, b)
	if err != nil || s.Status != StatusCanceled {
		t.Fatalf("cancel of a waiting invocation = %+v, %v", s, err)
	}
	for _, id := range []string{slow, c} {
		if s := h.waitStatus(id, StatusSucceeded); s.Attempts != 1 {
			t.Fatalf("after waiting: %+v, want 1 attempt", s)
		}
	}
	var final *client.InvocationStatus
	eventually(t, "the canceled event to leave the queue", func() bool {
		final, err = h.c.Invocation(ctx, b)
		ci, cerr := h.a.js.Consumer(ctx, StreamAsync, ConsumerWorkers)
		if err != nil || cerr != nil {
			return false
		}
		info, ierr := ci.Info(ctx)
		return ierr == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if final.Status != StatusCanceled || h.cnt.count(b) != 0 {
		t.Fatalf("canceled invocation: %+v, ran %d times", final, h.cnt.count(b))
	}
	mine, throttled := h.rec.of(b)
	if len(mine) != 0 || throttled != 0 {
		t.Fatalf("records of the canceled invocation: %+v; %d throttled records", mine, throttled)
	}
	if mine, _ := h.rec.of(c); len(mine) != 1 || mine[0].Status != gust.StatusOK {
		t.Fatalf("records of the invocation that waited: %+v, want one ok", mine)
	}
}
