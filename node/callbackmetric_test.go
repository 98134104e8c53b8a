package node

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gustfaas/gust/async"
)

// The node exports async.CallbacksDropped: a callback dropped because
// async.MaxCallbacks were in flight is otherwise only a log line. With
// metering on and off, since it is the one count of callbacks lost.
func TestCallbacksDroppedMetric(t *testing.T) {
	for _, metering := range []bool{true, false} {
		t.Run(fmt.Sprintf("metering=%v", metering), func(t *testing.T) {
			n, _ := testNode(t, "", func(c *Config) { c.Metering = &metering })
			r := do(t, "GET", n.URL()+"/metrics", nil)
			if r.status != 200 {
				t.Fatalf("/metrics = %d", r.status)
			}
			want := fmt.Sprintf("\ngust_async_callbacks_dropped_total %d\n", async.CallbacksDropped())
			if !bytes.Contains(r.body, []byte("# TYPE gust_async_callbacks_dropped_total counter")) || !bytes.Contains(r.body, []byte(want)) {
				t.Fatalf("/metrics lacks %q:\n%s", want, r.body)
			}
		})
	}
}
