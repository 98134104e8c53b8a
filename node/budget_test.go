package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// A function whose memory is more than the node's whole --memory-budget
// is refused at deploy, 400 naming both figures and their flags. One
// stored before the node restarted with a smaller budget answers a 400
// naming them too: not a 429 with Retry-After, which would have its
// callers retry for ever.
func TestMemoryOverTheNodeBudget(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := wasmtest.Code(t, wasmtest.HelloC(t))

	n, c := testNode(t, dir, func(cfg *Config) { cfg.MemoryBudget = 256 })
	_, err := c.Deploy(ctx, "big", gust.Spec{MemoryMB: 512}, "code.wasm", bytes.NewReader(code))
	if gust.ErrorCode(err) != gust.EINVALID {
		t.Fatalf("deploy of 512 MB on a 256 MB node: %v (code %q), want invalid", err, gust.ErrorCode(err))
	}
	for _, want := range []string{"512 MB", "256 MB", "--memory", "--memory-budget"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("deploy error %q does not name %q", err, want)
		}
	}
	if _, err := c.Function(ctx, "big"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("the refused deploy stored a function: %v", err)
	}
	deploy(t, c, "big", gust.Spec{MemoryMB: 256}, code)
	if r := do(t, "GET", n.URL()+"/fn/big", nil); r.status != 200 {
		t.Fatalf("invoke on the first node = %d %s", r.status, r.body)
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 30*time.Second)
	n.Close(closeCtx)
	closeCancel()

	n2, _ := testNode(t, dir, func(cfg *Config) { cfg.MemoryBudget = 128 })
	for i := 0; i < 2; i++ {
		r := do(t, "GET", n2.URL()+"/fn/big", nil)
		b := wantError(t, r, 400, gust.EINVALID)
		if ra := r.header.Get("Retry-After"); ra != "" {
			t.Errorf("Retry-After %q on an error no retry fixes", ra)
		}
		for _, want := range []string{"256 MB", "128 MB", "--memory", "--memory-budget"} {
			if !strings.Contains(b.Error, want) {
				t.Errorf("invoke error %q does not name %q", b.Error, want)
			}
		}
	}
}
