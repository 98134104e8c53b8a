package meter_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// An invocation is found by id among the usage records, the newest
// record of it winning, with its error (bounded) and HTTP status; an id
// not recorded, or not an id at all, is ENOTFOUND.
func TestInvocationByID(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m := openMeter(ctx, t, js)
	start := time.Now().Add(-time.Minute).UTC()
	for i := range 300 {
		m.Record(&gust.Invocation{ID: fmt.Sprintf("id%03d", i), Function: []string{"alpha", "beta"}[i%2], Version: 1,
			Trigger: "http", Start: start, Duration: time.Millisecond, MemoryMB: 128, Status: gust.StatusOK, HTTPCode: 200})
		if i%100 == 0 {
			if err := m.Flush(ctx); err != nil { // several messages
				t.Fatal(err)
			}
		}
	}
	long := strings.Repeat("é", 1000) // 2000 bytes
	m.Record(&gust.Invocation{ID: "id007", Function: "beta", Version: 2, Trigger: "http", Start: start.Add(time.Second),
		Duration: 2500 * time.Microsecond, MemoryMB: 64, Cold: true, Status: gust.StatusError, Error: "function error: \"boom\"\n" + long})

	inv, err := m.Invocation(ctx, "id042")
	if err != nil || inv.Function != "alpha" || inv.Version != 1 || inv.Status != gust.StatusOK || inv.HTTPCode != 200 ||
		inv.Duration != time.Millisecond || !inv.Start.Equal(start) || inv.Error != "" || inv.Cold {
		t.Fatalf("id042: %+v %v", inv, err)
	}
	inv, err = m.Invocation(ctx, "id007") // recorded twice: the newest wins
	if err != nil || inv.Version != 2 || inv.Status != gust.StatusError || !inv.Cold || inv.Duration != 2500*time.Microsecond ||
		!strings.HasPrefix(inv.Error, "function error: \"boom\"\né") || len(inv.Error) > 1024 || !strings.HasSuffix(inv.Error, "é") {
		t.Fatalf("id007: %+v %v", inv, err)
	}
	for _, id := range []string{"id999", "a.b", ""} {
		if _, err := m.Invocation(ctx, id); gust.ErrorCode(err) != gust.ENOTFOUND {
			t.Fatalf("%q: %v", id, err)
		}
	}
}

// Past the newest few messages the lookup streams the rest of its window:
// an id in an old message is found there, the newest record of it winning,
// and one recorded nowhere is ENOTFOUND after the whole window.
func TestInvocationByIDInOlderMessages(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m := openMeter(ctx, t, js)
	start := time.Now().Add(-time.Minute).UTC()
	for i := range 100 { // a message each
		m.Record(&gust.Invocation{ID: fmt.Sprintf("old%03d", i), Function: "alpha", Version: 1, Trigger: "http",
			Start: start, Duration: time.Millisecond, MemoryMB: 128, Status: gust.StatusOK, HTTPCode: 200})
		if i == 10 {
			m.Record(&gust.Invocation{ID: "old002", Function: "alpha", Version: 3, Trigger: "http",
				Start: start, Duration: time.Millisecond, MemoryMB: 128, Status: gust.StatusError, Error: "again"})
		}
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := m.Invocation(ctx, "old002")
	if err != nil || inv.Version != 3 || inv.Error != "again" {
		t.Fatalf("old002: %+v %v, want its newer record (version 3)", inv, err)
	}
	if inv, err := m.Invocation(ctx, "old000"); err != nil || inv.Version != 1 {
		t.Fatalf("old000: %+v %v", inv, err)
	}
	if _, err := m.Invocation(ctx, "never"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("never: %v", err)
	}
}

// A throttled call's record is found as one no instance ran (NotRun), as
// is a call whose instance could not be had; one that ran is not.
func TestInvocationByIDNotRun(t *testing.T) {
	ctx := testContext(t)
	js := startJetStream(t)
	m := openMeter(ctx, t, js)
	start := time.Now().Add(-time.Minute).UTC()
	m.Record(&gust.Invocation{ID: "thr", Function: "f", Version: 1, Trigger: "http", Start: start, Duration: time.Second, MemoryMB: 128, Status: gust.StatusThrottled})
	m.Record(&gust.Invocation{ID: "nostart", Function: "f", Version: 1, Trigger: "http", Start: start, Duration: time.Second, MemoryMB: 128, Cold: true, Status: gust.StatusError, NotRun: true})
	m.Record(&gust.Invocation{ID: "ran", Function: "f", Version: 1, Trigger: "http", Start: start, Duration: time.Microsecond, MemoryMB: 128, Status: gust.StatusError})
	for id, want := range map[string]bool{"thr": true, "nostart": true, "ran": false} {
		inv, err := m.Invocation(ctx, id)
		if err != nil || inv.NotRun != want {
			t.Fatalf("%s: %+v %v, want NotRun %v", id, inv, err, want)
		}
	}
}
