package node

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// The X-Gust-Invocation-Id of a failed /fn call names it at
// GET /v1/invocations/ID, as an async id does: kind sync, failed, with the
// function, version, duration, cold start and error. A successful one is
// found too, with what the function answered.
func TestSyncInvocationLookup(t *testing.T) {
	n, c := testNode(t, "", nil)
	deploy(t, c, "limits", gust.Spec{}, wasmtest.Code(t, wasmtest.GoGuest(t, loopGuest)))
	ctx := context.Background()

	r := do(t, "GET", n.URL()+"/fn/limits?panic=1", nil)
	wantError(t, r, http.StatusBadGateway, gust.EFUNCTION)
	bad, err := c.Invocation(ctx, r.header.Get("X-Gust-Invocation-Id"))
	if err != nil {
		t.Fatal(err)
	}
	if bad.Kind != "sync" || bad.Function != "limits" || bad.Version != 1 || bad.Status != "failed" || bad.Trigger != "http" ||
		!strings.Contains(bad.Error, "on purpose") || bad.Cold == nil || !*bad.Cold || bad.DurationMs <= 0 {
		t.Fatalf("failed sync call: %+v", bad)
	}
	r = do(t, "GET", n.URL()+"/fn/limits", nil)
	ok, err := c.Invocation(ctx, r.header.Get("X-Gust-Invocation-Id"))
	if err != nil {
		t.Fatal(err)
	}
	if ok.Kind != "sync" || ok.Status != "succeeded" || ok.HTTPStatus != 200 || ok.Error != "" || ok.Cold == nil {
		t.Fatalf("sync call: %+v", ok)
	}
	if _, err := c.Invocation(ctx, "no-such-invocation"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("unknown id: %v", err)
	}
}
