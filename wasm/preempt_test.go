package wasm_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// A guest spinning in a loop runs native code that the Go scheduler cannot
// preempt by signal. gust's copy of wazero (third_party/wazero/PATCHES.md)
// checks for a deadline every few thousand loop iterations instead of on
// every one; this proves those periodic exits still let a stop-the-world
// garbage collection through while the guest spins, and that the deadline
// still stops it. Without the exits, runtime.GC would wait for the guest
// forever (the deadline's timer cannot fire during a stop-the-world), and
// the test would hang until go test's -timeout.
func TestSpinningGuestDoesNotStallGC(t *testing.T) {
	d := newDriver(t)
	spin := wasmtest.CGuest(t, `volatile int n;
int main(void) { for (;;) n++; }
`)
	const limit = time.Second
	inst := start(t, load(t, d, spin, gust.Spec{Timeout: gust.Duration(limit)}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	invoked := make(chan error, 1)
	go func() {
		_, err := inst.Invoke(ctx, get("/", ""))
		invoked <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the guest start spinning

	collected := make(chan struct{})
	go func() {
		runtime.GC()
		close(collected)
	}()
	select {
	case <-collected:
	case err := <-invoked:
		t.Fatalf("the guest ended (%v) before a garbage collection started during its loop could finish", err)
	}
	wantCode(t, <-invoked, gust.ETIMEOUT, "function timed out after 1s")
}
