package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/cluster/clustertest"
)

// BenchmarkInvoke compares a call served where it arrives with one that
// the receiving node, out of memory, forwards to another over NATS
// request-reply (three clustered servers on loopback, the nodes on
// different servers, an invoker that answers at once): the difference is
// the forwarding overhead per request.
func BenchmarkInvoke(b *testing.B) {
	ns := clustertest.Start(b, 3)
	release := make(chan struct{})
	close(release)
	v := &gust.Version{Function: "f", Number: 1, Spec: gust.Spec{MaxConcurrency: 1000, Timeout: gust.Duration(5 * time.Second)}}
	ms := startMembers(b, ns, v, release)
	eventually(b, "three live nodes", allLive(ms, 3))
	body := make([]byte, 1024)
	run := func(b *testing.B, at member) {
		ctx := context.Background()
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := at.c.Invoke(ctx, v, &gust.Request{ID: "bench", Method: "POST", Path: "/", Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("local", func(b *testing.B) { run(b, ms[0]) })
	ms[1].l.full = true
	b.Run("forwarded", func(b *testing.B) { run(b, ms[1]) })
}
