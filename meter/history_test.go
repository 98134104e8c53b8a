package meter_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/meter"
)

func TestInvocationHistory(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m := openMeter(ctx, t, js)
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

// Records are stored many to a message, one function per message, and a
// stream written one record per message (before batching) still reads.
func TestBatchedAndOldFormat(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m := openMeter(ctx, t, js)
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	// The old format: one JSON record per message.
	for i := range 3 {
		old := meter.NewRecord(&gust.Invocation{ID: fmt.Sprintf("old%d", i), Function: "alpha", Version: 1,
			Start: base.Add(time.Duration(i) * time.Minute), Duration: time.Millisecond, MemoryMB: 128, Status: gust.StatusOK})
		data, _ := json.Marshal(&old)
		if _, err := js.Publish(ctx, meter.SubjectPrefix+"alpha", data); err != nil {
			t.Fatal(err)
		}
	}
	const n = 3000
	for i := range n {
		fn := "alpha"
		if i%2 == 1 {
			fn = "beta"
		}
		m.Record(&gust.Invocation{ID: fmt.Sprintf("new%04d", i), Function: fn, Version: 1, Trigger: "http",
			Start: base.Add(90*time.Minute + time.Duration(i)*time.Millisecond), Duration: time.Millisecond, MemoryMB: 128, Status: gust.StatusOK})
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, meter.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 3 old messages plus, per function, 1500 records in messages of up
	// to 1024: a few more if a flush interval passed mid-loop, never
	// anything near one per record.
	if got := info.State.Msgs; got < 3+4 || got > 3+40 {
		t.Errorf("stream holds %d messages for %d records", got, 3+n)
	}
	rep, err := m.Usage(ctx, "", base, base.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Invocations != 3+n || len(rep.Rows) != 3 {
		t.Errorf("usage: %d invocations in %d rows, want %d in 3", rep.Total.Invocations, len(rep.Rows), 3+n)
	}
	alpha, err := m.Invocations(ctx, meter.HistoryQuery{Function: "alpha", Limit: 1000})
	if err != nil || len(alpha) != 1000 || alpha[0].ID != "new2998" || alpha[999].ID != "new1000" {
		t.Fatalf("alpha history: %d records, err %v", len(alpha), err)
	}
	oldest, err := m.Invocations(ctx, meter.HistoryQuery{Function: "alpha", Limit: 1000, Since: base.Add(-time.Hour)})
	if err != nil || len(oldest) != 1000 {
		t.Fatalf("alpha since: %d records, err %v", len(oldest), err)
	}
	// Since is on the record's start, not the message's time.
	recent, err := m.Invocations(ctx, meter.HistoryQuery{Since: base.Add(90*time.Minute + 2990*time.Millisecond)})
	if err != nil || len(recent) != 10 || recent[0].ID != "new2999" || recent[9].ID != "new2990" {
		t.Fatalf("since within a message: %d records, err %v", len(recent), err)
	}
}
