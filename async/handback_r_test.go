package async

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
)

// A message handed back and then gone from its stream (MaxAge, limits, a
// delete) is never delivered again, so nothing settles it: its count of
// returns used to stay in the triggers bucket for ever. It expires now.
func TestHandbackCountOfAMessageGoneExpires(t *testing.T) {
	h, f := newFaultyHarness(t, func(c *Config) {
		c.HoldUnavailable = 200 * time.Millisecond
		c.HandbackTTL = time.Second
	})
	js := ordersStream(t, h)
	f.set("unavailable")
	h.deploy("orders", gust.Spec{
		RetryBackoff: gust.Duration(20 * time.Millisecond),
		Triggers:     []gust.Trigger{{Stream: "ORDERS", Filter: "orders.>", MaxDeliveries: 3}},
	})
	ctx := context.Background()
	if _, err := js.Publish(ctx, "orders.new", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	key := handbackKey("ORDERS", durableName("orders", 0), 1)
	eventually(t, "a return counted", func() bool { return h.a.handbacks(key) > 0 })
	s, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the count of a message gone to expire", func() bool {
		_, err := h.a.handbacksKV.Get(ctx, key)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
}

// Counts were kept in the triggers bucket once, without a TTL: a start
// clears those (not the cron ticks beside them), and leaves the triggers
// bucket as a node of an older gust opens it.
func TestHandbacksOfAnOlderNodeAreCleared(t *testing.T) {
	h := newHarness(t, "", nil)
	ctx := context.Background()
	for _, k := range []string{"handback.S.d.7", "cron.kept.0"} {
		if _, err := h.a.triggers.Put(ctx, k, []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	a := h.another(nil)
	if _, err := a.triggers.Get(ctx, "handback.S.d.7"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("a count left in the triggers bucket: %v, want not found", err)
	}
	if _, err := a.triggers.Get(ctx, "cron.kept.0"); err != nil {
		t.Fatalf("a cron tick: %v", err)
	}
	old := jetstream.KeyValueConfig{Bucket: BucketTriggers, Description: "gust trigger state: last fired cron ticks", History: 1, Replicas: 1}
	if _, err := h.brk.JetStream().CreateOrUpdateKeyValue(ctx, old); err != nil {
		t.Fatalf("an older node opening the triggers bucket: %v", err)
	}
}

// lateReturn fails a function's first delivery and, on the second, writes
// the message's count of returns while it runs, as a node that missed its
// AckWait holding the message and handed it back late would.
type lateReturn struct {
	Invoker
	mu    sync.Mutex
	a     *Async
	key   string
	calls int
}

func (l *lateReturn) Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error) {
	l.mu.Lock()
	l.calls++
	n, a := l.calls, l.a
	l.mu.Unlock()
	switch n {
	case 1:
		return nil, gust.Errorf(gust.EFUNCTION, "first delivery fails (test)")
	case 2:
		a.recordHandback(l.key, 1)
	}
	return l.Invoker.Invoke(ctx, v, req)
}

// Node A misses its AckWait holding a message; node B gets the redelivery,
// reads no returns, runs and acks it; A's late return is written meanwhile.
// The count used to stay for ever (settling forgot only counts it had
// read); a redelivery's settling now removes it whatever it read.
func TestHandbackCountWrittenDuringARedeliveryIsRemoved(t *testing.T) {
	key := handbackKey("ORDERS", durableName("orders", 0), 1)
	l := &lateReturn{key: key}
	h := newHarnessWrapped(t, "", nil, func(inv Invoker) Invoker { l.Invoker = inv; return l })
	l.mu.Lock()
	l.a = h.a
	l.mu.Unlock()
	js := ordersStream(t, h)
	h.deploy("orders", gust.Spec{
		RetryBackoff: gust.Duration(20 * time.Millisecond),
		Triggers:     []gust.Trigger{{Stream: "ORDERS", Filter: "orders.>", MaxDeliveries: 3}},
	})
	ctx := context.Background()
	if _, err := js.Publish(ctx, "orders.new", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the redelivery to run", func() bool { return h.cnt.triggered("stream") == 1 })
	settledConsumer(t, js, "orders")
	eventually(t, "the late count to be removed", func() bool {
		_, err := h.a.handbacksKV.Get(ctx, key)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	if hd := h.cnt.lastHeader("stream"); hd.Get(HeaderAttempt) != "2" {
		t.Fatalf("redelivery ran as attempt %q, want 2", hd.Get(HeaderAttempt))
	}
}
