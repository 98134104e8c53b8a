package pool

import (
	"context"
	"log/slog"
	"testing"
	"time"

	gust "github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// stuckInit is a Go reactor whose initialization never returns.
const stuckInit = `package main

import "github.com/gustfaas/gust/sdk/lean"

var spins int

func init() {
	lean.HandleFunc(func(r *lean.Request) *lean.Response { return lean.Text(200, "unreachable") })
	for {
		spins++
	}
}

func main() {}
`

// The start bound stops a real guest stuck in _initialize (wazero closes
// a module whose context ends), so the call gets ETIMEOUT and a Drain
// (a rollback) finishes.
func TestStartTimeoutStopsRealWasmGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest")
	}
	logger := slog.New(slog.DiscardHandler)
	d, err := wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(t), NoSnapshots: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	v := &gust.Version{Function: "stuck", Number: 1, Spec: gust.Spec{Runtime: gust.RuntimeWasm}}
	m, err := d.Load(context.Background(), v, wasmtest.Code(t, wasmtest.GoGuest(t, stuckInit)), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ConfigFor(v, NewBudget(1024), logger)
	cfg.StartTimeout, cfg.Interval = 200*time.Millisecond, -1
	p := New(m, cfg)
	a := await(t, "Acquire of a guest stuck in _initialize", acquireAsync(p, context.Background()))
	wantCode(t, a.err, gust.ETIMEOUT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if u := cfg.Budget.Stats().UsedMB; u != 0 {
		t.Errorf("budget holds %d MB after the start timed out", u)
	}
}
