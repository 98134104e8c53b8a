package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/meter"
)

// Usage records still buffered in the meter when the node closes are
// stored before the broker stops, even when the shutdown context has run
// out on the steps before (an HTTP shutdown that used the whole grace
// period).
func TestUsageBufferedAtShutdownSurvivesAnExpiredContext(t *testing.T) {
	dir := t.TempDir()
	n, _ := testNode(t, dir, nil)
	// One record each of many functions: fewer than a batch, so they wait
	// in the buffer for the close; one message each, so the last publish
	// takes the meter a while.
	const functions = 4000
	start := time.Now()
	for i := range functions {
		n.Meter().Record(&gust.Invocation{
			ID: fmt.Sprintf("inv-%d", i), Function: fmt.Sprintf("fn-%d", i), Version: 1, Trigger: "http",
			Start: start, Duration: 3 * time.Millisecond, MemoryMB: 128, Status: "ok", HTTPCode: 200,
		})
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	n.Close(expired)

	n2, _ := testNode(t, dir, nil)
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	s, err := n2.brk.JetStream().Stream(ctx, meter.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.NumSubjects; got != functions {
		t.Fatalf("%s holds the records of %d functions, want all %d buffered at shutdown", meter.StreamName, got, functions)
	}
}
