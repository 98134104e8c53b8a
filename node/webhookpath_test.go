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

// A rollback or an alias cannot send traffic to a stored version that a
// deploy would refuse now: its webhook path is another function's, or a
// secret it lists was removed since.
func TestRollbackChecksWhatTheVersionNeeds(t *testing.T) {
	_, c := testNode(t, "", nil)
	ctx := context.Background()
	for _, s := range []string{"HOOK_KEY", "API_KEY"} {
		if _, err := c.SetSecret(ctx, s, []byte("value of "+s)); err != nil {
			t.Fatal(err)
		}
	}
	code := wasmtest.Code(t, wasmtest.HelloC(t))
	hook := gust.Spec{Triggers: []gust.Trigger{{Webhook: &gust.WebhookTrigger{Path: "/hooks/shared", Secret: "HOOK_KEY", Scheme: "stripe"}}}}
	deploy(t, c, "wa", hook, code)        // version 1 has the path
	deploy(t, c, "wa", gust.Spec{}, code) // version 2 does not
	deploy(t, c, "wb", hook, code)        // so wb may take it
	_, err := c.Rollback(ctx, "wa", 1)
	if gust.ErrorCode(err) != gust.ECONFLICT || !strings.Contains(err.Error(), "wb") {
		t.Fatalf("rollback to a version whose webhook path wb now serves: %v, want conflict naming wb", err)
	}
	_, err = c.SetAlias(ctx, "wa", "old", []gust.AliasTarget{{Version: 1, Weight: 100}})
	if gust.ErrorCode(err) != gust.ECONFLICT {
		t.Fatalf("alias to that version: %v, want conflict", err)
	}

	deploy(t, c, "ps", gust.Spec{Secrets: []string{"API_KEY"}}, code) // version 1 lists API_KEY
	deploy(t, c, "ps", gust.Spec{}, code)                             // version 2 does not
	if err := c.DeleteSecret(ctx, "API_KEY"); err != nil {            // no live or aliased version uses it
		t.Fatal(err)
	}
	_, err = c.Rollback(ctx, "ps", 1)
	if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), "API_KEY") {
		t.Fatalf("rollback to a version whose secret was removed: %v, want invalid naming API_KEY", err)
	}
	if _, err := c.Rollback(ctx, "wa", 2); err != nil { // a version that needs nothing gone
		t.Fatal(err)
	}
}
