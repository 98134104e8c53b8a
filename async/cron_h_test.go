package async

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/gustfaas/gust"
)

// A tick whose enqueue fails once, leaving its queued record behind as a
// store that failed mid-way under a NATS outage does, is retried before the
// next tick and runs; it used to be logged and dropped.
func TestCronTickEnqueueRetried(t *testing.T) {
	var (
		mu     sync.Mutex
		failed string // the id of the tick whose first enqueue failed
		tries  = map[string]int{}
	)
	real := enqueueTick
	t.Cleanup(func() { enqueueTick = real }) // after the harness closes (cleanups run last first)
	enqueueTick = func(a *Async, ctx context.Context, ev *Event, msgID string) (bool, error) {
		mu.Lock()
		tries[ev.ID]++
		first := failed == ""
		if first {
			failed = ev.ID
		}
		mu.Unlock()
		if first {
			if _, err := a.createStatus(ctx, queuedStatus(ev)); err != nil {
				return false, err
			}
			return false, gust.WrapError(gust.EUNAVAILABLE, errors.New("nats: connection closed"), "storing the invocation failed")
		}
		return real(a, ctx, ev, msgID)
	}
	h := newHarness(t, "", nil)
	h.deploy("tick", gust.Spec{Triggers: []gust.Trigger{{Cron: "@every 1s"}}})
	eventually(t, "a failed enqueue", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed != ""
	})
	mu.Lock()
	id := failed
	mu.Unlock()
	h.waitStatus(id, StatusSucceeded)
	mu.Lock()
	n := tries[id]
	mu.Unlock()
	if n < 2 {
		t.Fatalf("tick %s enqueued %d times, want a retry", id, n)
	}
	if c := h.cnt.count(id); c != 1 {
		t.Fatalf("tick %s ran %d times, want 1", id, c)
	}
}
