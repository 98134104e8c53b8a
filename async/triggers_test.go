package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
)

func (h *harness) running(name string) bool {
	for _, a := range append([]*Async{h.a}, h.extra...) {
		a.trig.mu.Lock()
		_, ok := a.trig.running[name]
		a.trig.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// Two nodes share one NATS and both run the cron trigger: every tick runs
// exactly once. Delivery is at least once: an event whose worker misses
// every heartbeat for AckWait runs again, which a loaded machine can cause
// with the harness's 2 s; the long AckWait here keeps this test about the
// tick's deduplication.
func TestCronOncePerTickAcrossNodes(t *testing.T) {
	longAck := func(c *Config) { c.AckWait = 20 * time.Second }
	h := newHarness(t, "", longAck)
	h.another(longAck)
	h.deploy("tick", gust.Spec{Triggers: []gust.Trigger{{Cron: "@every 1s"}}})
	eventually(t, "three ticks", func() bool { return h.cnt.triggered("cron") >= 3 })

	counts := h.cnt.counts()
	for id, n := range counts {
		if n != 1 {
			t.Fatalf("tick invocation %s ran %d times", id, n)
		}
	}
	// Every id is a tick's id: one invocation per tick, not one per node.
	now := time.Now().Unix()
	ticks := map[string]int64{}
	for s := now - 30; s <= now+2; s++ {
		ticks[cronID("tick", 0, time.Unix(s, 0))] = s
	}
	var one string
	for id := range counts {
		if _, ok := ticks[id]; !ok {
			t.Fatalf("invocation %s is not the id of a tick", id)
		}
		one = id
	}
	s := h.waitStatus(one, StatusSucceeded)
	hd := s.Response.Headers
	if s.Trigger != "cron" || hd.Get("Echo-Ce-Type") != CETypeCron || hd.Get("Echo-Ce-Source") != "/gust/cron/tick" ||
		hd.Get("Echo-Ce-Specversion") != "1.0" || hd.Get("Echo-Ce-Id") != one || hd.Get("Echo-Ce-Time") == "" {
		t.Fatalf("cron status %+v headers %v", s, hd)
	}
	var ce CronEvent
	if err := json.Unmarshal([]byte(s.Response.Body), &ce); err != nil || ce.Schedule != "@every 1s" || ce.Tick.Unix() != ticks[one] {
		t.Fatalf("cron body %q: %v", s.Response.Body, err)
	}

	// A deploy without the trigger stops it on every node.
	h.deploy("tick", gust.Spec{})
	eventually(t, "the cron runners to stop", func() bool { return !h.running("tick") })
}

// A tick missed while gust was down fires once at start.
func TestCronCatchUp(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	h.deploy("late", gust.Spec{Triggers: []gust.Trigger{{Cron: "@every 1s", CatchUp: gust.Duration(time.Hour)}}})
	eventually(t, "a tick", func() bool { return h.cnt.triggered("cron") >= 1 })
	h.close()
	down := time.Now()
	// Stay down across at least two ticks.
	time.Sleep(2100 * time.Millisecond)
	up := time.Now()
	h2 := newHarness(t, dir, nil)

	// The catch-up tick is the last one before the runner started.
	var caught string
	var caughtAt int64
	eventually(t, "the catch-up tick", func() bool {
		for s := up.Unix(); s <= time.Now().Unix(); s++ {
			id := cronID("late", 0, time.Unix(s, 0))
			st, err := h2.a.Status(context.Background(), id)
			if err != nil || st.Status != StatusSucceeded {
				continue
			}
			var ce CronEvent
			if json.Unmarshal([]byte(st.Response.Body), &ce) == nil && ce.CatchUp {
				caught, caughtAt = id, s
				return true
			}
		}
		return false
	})
	// Missed ticks before it did not fire: one catch-up, not one per tick.
	for s := down.Unix() + 2; s < caughtAt; s++ {
		if _, err := h2.a.Status(context.Background(), cronID("late", 0, time.Unix(s, 0))); err == nil {
			t.Fatalf("missed tick %d fired too (catch-up was %d)", s, caughtAt)
		}
	}
	if n := h2.cnt.count(caught); n != 1 {
		t.Fatalf("catch-up ran %d times", n)
	}
}

func TestSubjectTrigger(t *testing.T) {
	h := newHarness(t, "", nil)
	h.another(nil)
	nc := h.brk.Conn()
	h.deploy("sub", gust.Spec{Triggers: []gust.Trigger{{Subject: "jobs.echo", MaxConcurrency: 2}}})
	eventually(t, "the subscription", func() bool {
		m, err := nc.Request("jobs.echo", []byte("ping"), 2*time.Second)
		return err == nil && string(m.Data) == "ping"
	})
	before := h.cnt.triggered("nats")
	for i := range 20 {
		m, err := nc.Request("jobs.echo", []byte(fmt.Sprint(i)), 5*time.Second)
		if err != nil || string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := h.cnt.triggered("nats") - before; n != 20 {
		t.Fatalf("20 messages ran %d invocations (queue group: one node each)", n)
	}
	hd := h.cnt.lastHeader("nats")
	if hd.Get("Ce-Type") != CETypeNATS || hd.Get("Ce-Subject") != "jobs.echo" || hd.Get("Ce-Specversion") != "1.0" || hd.Get("Ce-Id") == "" {
		t.Fatalf("headers = %v", hd)
	}
	h.deploy("sub", gust.Spec{})
	eventually(t, "the subscription to go", func() bool {
		_, err := nc.Request("jobs.echo", []byte("ping"), time.Second)
		return errors.Is(err, nats.ErrNoResponders)
	})
}

func TestStreamTrigger(t *testing.T) {
	h := newHarness(t, "", nil)
	ctx := context.Background()
	js := h.brk.JetStream()
	if _, err := broker.EnsureStream(ctx, js, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	h.deploy("orders", gust.Spec{
		RetryBackoff: gust.Duration(20 * time.Millisecond),
		Triggers:     []gust.Trigger{{Stream: "ORDERS", Filter: "orders.>", MaxDeliveries: 3, BatchSize: 5, MaxConcurrency: 2}},
	})
	for _, body := range []string{"ok", "fail:1", "fail:always"} {
		if _, err := js.Publish(ctx, "orders.new", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the dead letter", func() bool {
		dl, err := h.a.DeadLetters(ctx, "orders")
		return err == nil && len(dl) == 1
	})
	dl, _ := h.a.DeadLetters(ctx, "orders")
	if dl[0].Trigger != "stream" || dl[0].Attempts != 3 || dl[0].Code != gust.EFUNCTION || !strings.Contains(dl[0].Error, "panic") {
		t.Fatalf("dead letter = %+v", dl[0])
	}
	cons, err := js.Consumer(ctx, "ORDERS", durableName("orders", 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "every message settled", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
	// ok once, fail:1 twice, fail:always three times.
	if n := h.cnt.triggered("stream"); n != 6 {
		t.Fatalf("%d invocations, want 6", n)
	}
	hd := h.cnt.lastHeader("stream")
	if hd.Get("Ce-Type") != CETypeStream || hd.Get("Ce-Subject") != "orders.new" || !strings.HasPrefix(hd.Get("Ce-Id"), "ORDERS-") || hd.Get("Ce-Source") != "/gust/stream/ORDERS" {
		t.Fatalf("headers = %v", hd)
	}

	// Removing the function deletes its durable consumer.
	if err := h.reg.Delete(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the consumer to be deleted", func() bool {
		_, err := js.Consumer(ctx, "ORDERS", durableName("orders", 0))
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	})
}
