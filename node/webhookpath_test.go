package node

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// A webhook path belongs to one function: a second function's deploy that
// names it is refused with 409 naming the owner, and nothing is stored;
// the owner itself may deploy it again.
func TestWebhookPathBelongsToOneFunction(t *testing.T) {
	_, c := testNode(t, "", nil)
	ctx := context.Background()
	if _, err := c.SetSecret(ctx, "HOOK_KEY", []byte("a webhook signing key")); err != nil {
		t.Fatal(err)
	}
	code := wasmtest.Code(t, wasmtest.HelloC(t))
	spec := gust.Spec{Triggers: []gust.Trigger{{Webhook: &gust.WebhookTrigger{Path: "/hooks/shared", Secret: "HOOK_KEY", Scheme: "stripe"}}}}
	deploy(t, c, "owner", spec, code)
	_, err := c.Deploy(ctx, "intruder", spec, "intruder.wasm", bytes.NewReader(code))
	if gust.ErrorCode(err) != gust.ECONFLICT || !strings.Contains(err.Error(), "owner") || !strings.Contains(err.Error(), "/hooks/shared") {
		t.Fatalf("second function's deploy of a taken path: %v, want conflict naming owner and the path", err)
	}
	if _, err := c.Function(ctx, "intruder"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("the refused deploy stored a function: %v", err)
	}
	deploy(t, c, "owner", spec, code) // its own path again: fine
}
