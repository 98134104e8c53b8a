package async

import (
	"context"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// Node A cannot run the function (EUNAVAILABLE: e.g. its runtime is not
// installed there, or it lacks the master key); node B can. The message
// must reach B, handed back by A untried after its hold (not held forever).
func TestStreamMessageLeavesANodeThatCannotRunIt(t *testing.T) {
	h, f := newFaultyHarness(t, nil)
	js := ordersStream(t, h)
	f.set("unavailable")
	h.deploy("orders", gust.Spec{
		RetryBackoff: gust.Duration(20 * time.Millisecond),
		Triggers:     []gust.Trigger{{Stream: "ORDERS", Filter: "orders.>", MaxDeliveries: 3}},
	})
	if _, err := js.Publish(context.Background(), "orders.new", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node A refused it", func() bool { return f.refused() > 0 })
	h.another(nil) // node B, healthy
	eventually(t, "the message to run on node B", func() bool { return h.cnt.triggered("stream") == 1 })
}
