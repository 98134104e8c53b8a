package meter_test

import (
	"context"
	"testing"
	"time"

	"github.com/gustfaas/gust/meter"
)

func TestDebugPhases(t *testing.T) {
	for iter := 0; iter < 10; iter++ {
		ctx := testContext(t)
		js := startJetStream(t)
		base := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
		var w want
		m1, err := meter.New(ctx, js, meter.Config{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			inv := invocation(2*i, base)
			w.add(inv)
			m1.Record(inv)
		}
		if err := m1.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		rep, _ := m1.Usage(ctx, "alpha", base, base.Add(2*time.Hour))
		w.check(t, "after flush", rep.Total.Counters)
		for i := 300; i < 400; i++ {
			inv := invocation(2*i, base)
			w.add(inv)
			m1.Record(inv)
		}
		if err := m1.Close(ctx); err != nil {
			t.Fatal(err)
		}
		s, _ := js.Stream(ctx, meter.StreamName)
		info, _ := s.Info(ctx)
		if info.State.Msgs != 400 {
			t.Errorf("stream has %d msgs", info.State.Msgs)
		}
		if err := js.DeleteConsumer(ctx, meter.StreamName, meter.ConsumerName); err != nil {
			t.Fatal(err)
		}
		m2, err := meter.New(ctx, js, meter.Config{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		rep, _ = m2.Usage(ctx, "alpha", base, base.Add(2*time.Hour))
		w.check(t, "after redelivery", rep.Total.Counters)
		m2.Close(context.Background())
	}
}
