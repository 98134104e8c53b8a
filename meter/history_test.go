package meter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/meter"
)

func TestInvocationHistory(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m, err := meter.New(ctx, js, meter.Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	start := time.Now().Add(-time.Minute)
	for i := 0; i < 30; i++ {
		fn, status := "alpha", gust.StatusOK
		if i%3 == 0 {
			fn = "beta"
		}
		if i%5 == 0 {
			status = gust.StatusError
		}
		m.Record(&gust.Invocation{ID: fmt.Sprintf("id%02d", i), Function: fn, Version: 1, Trigger: "http",
			Start: start.Add(time.Duration(i) * time.Second), Duration: time.Millisecond, MemoryMB: 128, Status: status})
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := m.Invocations(ctx, meter.HistoryQuery{})
	if err != nil || len(all) != 30 || all[0].ID != "id29" || all[29].ID != "id00" {
		t.Fatalf("all: %d records, first %v, err %v", len(all), all[0].ID, err)
	}
	beta, err := m.Invocations(ctx, meter.HistoryQuery{Function: "beta", Limit: 3})
	if err != nil || len(beta) != 3 || beta[0].ID != "id27" || beta[2].ID != "id21" {
		t.Fatalf("beta limit 3: %+v %v", beta, err)
	}
	errs, err := m.Invocations(ctx, meter.HistoryQuery{Function: "alpha", Status: gust.StatusError})
	if err != nil || len(errs) != 4 { // 5, 10, 20, 25 (0 and 15 are beta)
		t.Fatalf("alpha errors: %+v %v", errs, err)
	}
	if _, err := m.Invocations(ctx, meter.HistoryQuery{Status: "weird"}); gust.ErrorCode(err) != gust.EINVALID {
		t.Fatalf("bad status: %v", err)
	}
	recent, err := m.Invocations(ctx, meter.HistoryQuery{Since: time.Now().Add(time.Hour)})
	if err != nil || len(recent) != 0 {
		t.Fatalf("future since: %d %v", len(recent), err)
	}
}
