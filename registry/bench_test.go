package registry

import (
	"context"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
)

// BenchmarkHotPathRead is what the invoker pays per request: the function,
// then the version its live alias picked.
func BenchmarkHotPathRead(b *testing.B) {
	br := startBrokerB(b)
	r, err := Open(context.Background(), br.JetStream(), Config{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if _, err := r.Deploy(ctx, "fn", gust.Spec{Env: map[string]string{"A": "1"}}, "reactor", []byte("code")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f, err := r.Function(ctx, "fn")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Version(ctx, "fn", f.Aliases[gust.AliasLive].Pick(0)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDeploy(b *testing.B) {
	br := startBrokerB(b)
	r, err := Open(context.Background(), br.JetStream(), Config{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	code := make([]byte, 2<<20)
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Deploy(ctx, "fn", gust.Spec{}, "reactor", code); err != nil {
			b.Fatal(err)
		}
	}
}

func startBrokerB(b *testing.B) *broker.Broker {
	b.Helper()
	br, err := broker.Start(context.Background(), broker.Config{DataDir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	return br
}
