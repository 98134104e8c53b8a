package node

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// A deploy token cannot give a function a secret: the function's code
// could echo it, and only an admin may set or see secrets. It can redeploy
// with the secrets an admin's deploy gave the function.
func TestDeployTokenCannotGrantSecrets(t *testing.T) {
	n, admin := testNode(t, "", nil)
	ctx := context.Background()
	for _, s := range []string{"DB_PASSWORD", "OTHER", "HOOK_KEY"} {
		if _, err := admin.SetSecret(ctx, s, []byte("value-of-"+s)); err != nil {
			t.Fatal(err)
		}
	}
	token := func(scope string, fns ...string) *client.Client {
		secret, _, err := admin.CreateToken(ctx, scope, fns, 0)
		if err != nil {
			t.Fatal(err)
		}
		return client.New(n.URL(), secret)
	}
	deployer, limited, fnAdmin := token("deploy"), token("deploy", "db"), token("admin", "db")
	code := wasmtest.Code(t, wasmtest.HelloC(t))
	try := func(c *client.Client, spec gust.Spec) error {
		_, err := c.Deploy(ctx, "db", spec, "db.wasm", bytes.NewReader(code))
		return err
	}
	refused := func(err error, secret string) {
		t.Helper()
		if gust.ErrorCode(err) != gust.EFORBIDDEN {
			t.Fatalf("deploy naming %s: %v, want %s", secret, err, gust.EFORBIDDEN)
		}
		if msg := gust.ErrorMessage(err); !strings.Contains(msg, secret) || !strings.Contains(msg, `"admin"`) {
			t.Fatalf("message %q does not name the secret and the scope it needs", msg)
		}
	}
	withDB := gust.Spec{Secrets: []string{"DB_PASSWORD"}}

	// A new function: no previous version had the secret.
	refused(try(deployer, withDB), "DB_PASSWORD")
	refused(try(limited, withDB), "DB_PASSWORD")
	if _, err := admin.Function(ctx, "db"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("a refused deploy stored the function: %v", err)
	}
	// An admin token, even one limited to the function, may.
	if err := try(fnAdmin, withDB); err != nil {
		t.Fatalf("admin token for the function: %v", err)
	}
	// Redeploys by deploy tokens keep the secret ...
	if err := try(limited, gust.Spec{Secrets: []string{"DB_PASSWORD"}, Env: map[string]string{"V": "2"}}); err != nil {
		t.Fatalf("redeploy keeping the secret: %v", err)
	}
	// ... but add none, as an env variable or as a signing key.
	refused(try(deployer, gust.Spec{Secrets: []string{"DB_PASSWORD", "OTHER"}}), "OTHER")
	hook := gust.Spec{Secrets: []string{"DB_PASSWORD"}, Triggers: []gust.Trigger{{Webhook: &gust.WebhookTrigger{Path: "/hooks/db", Secret: "HOOK_KEY", Scheme: gust.WebhookGitHub}}}}
	refused(try(limited, hook), "HOOK_KEY")
	vs, err := admin.Versions(ctx, "db")
	if err != nil || len(vs) != 2 {
		t.Fatalf("versions after refused deploys: %d %v, want 2", len(vs), err)
	}
	// Once an admin gave the function the key, redeploys keep it too; and
	// dropping a secret needs no admin.
	if err := try(admin, hook); err != nil {
		t.Fatal(err)
	}
	if err := try(deployer, hook); err != nil {
		t.Fatalf("redeploy keeping the webhook key: %v", err)
	}
	if err := try(deployer, gust.Spec{}); err != nil {
		t.Fatalf("redeploy without secrets: %v", err)
	}
}
