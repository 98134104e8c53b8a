package wasm_test

import (
	"context"
	"os"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/experimental/logging"
)

func TestScratchHostCalls(t *testing.T) {
	d := newDriver(t)
	ctx := experimental.WithFunctionListenerFactory(context.Background(), logging.NewHostLoggingListenerFactory(os.Stderr, logging.LogScopeAll))
	m, err := d.Load(ctx, version("fn", gust.Spec{}), wasmtest.Code(t, wasmtest.GoGuest(t, leanHello)), nil)
	if err != nil {
		t.Fatal(err)
	}
	inst, _ := m.NewInstance(ctx)
	for i := 0; i < 3; i++ {
		os.Stderr.WriteString("---- call\n")
		inst.Invoke(ctx, get("/", ""))
	}
}
