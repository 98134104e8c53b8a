package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// deleteSecret sends DELETE /v1/secrets/NAME (with query) as the admin.
func deleteSecret(t *testing.T, n *Node, nameQuery string) result {
	t.Helper()
	tok, err := os.ReadFile(n.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	req, err := newRequest("DELETE", n.URL()+"/v1/secrets/"+nameQuery, strings.TrimSpace(string(tok)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, b}
}

// A secret that a live or aliased version uses (as env, a webhook's key
// or a JWT route's key) is not removed: 409 naming the versions and what
// needs it, which would otherwise answer 503 on every call. One only an
// older, unaliased version lists is removed. ?force=true removes a used
// one and names the versions that now fail, and they do once loaded again.
func TestSecretRemoveRefusedWhileUsed(t *testing.T) {
	dir := t.TempDir()
	n, c := testNode(t, dir, nil)
	ctx := context.Background()
	for _, s := range []string{"DB_PASSWORD", "OLD_ONLY", "HOOK_KEY", "JWT_KEY", "CANARY_KEY", "UNUSED"} {
		if _, err := c.SetSecret(ctx, s, []byte("value-of-"+s+"-long-enough-for-an-hs256-key")); err != nil {
			t.Fatal(err)
		}
	}
	code := wasmtest.Code(t, wasmtest.GoGuest(t, secretGuest))
	deploy(t, c, "db", gust.Spec{Secrets: []string{"DB_PASSWORD", "OLD_ONLY"}}, code)
	deploy(t, c, "db", gust.Spec{Secrets: []string{"DB_PASSWORD"}}, code) // live: 2
	deploy(t, c, "hook", gust.Spec{
		Triggers: []gust.Trigger{{Webhook: &gust.WebhookTrigger{Path: "/hooks/secretrm", Secret: "HOOK_KEY", Scheme: gust.WebhookGitHub}}},
		Routes:   []gust.Route{{Method: "POST", Path: "/in", Auth: gust.AuthJWT, JWT: &gust.RouteJWT{Secret: "JWT_KEY"}}},
	}, code)
	deploy(t, c, "canary", gust.Spec{Secrets: []string{"CANARY_KEY"}}, code)
	deploy(t, c, "canary", gust.Spec{}, code)
	if _, err := c.SetAlias(ctx, "canary", "beta", []gust.AliasTarget{{Version: 1, Weight: 100}}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		secret string
		says   []string
	}{
		{"DB_PASSWORD", []string{"secret DB_PASSWORD is in use by db version 2 (live; env)", "503", "gust secret rm --force DB_PASSWORD"}},
		{"HOOK_KEY", []string{"hook version 1 (live; webhook /hooks/secretrm)"}},
		{"JWT_KEY", []string{`hook version 1 (live; jwt route "POST /in")`}},
		{"CANARY_KEY", []string{"canary version 1 (alias beta; env)"}},
	} {
		r := deleteSecret(t, n, tc.secret)
		b := wantError(t, r, http.StatusConflict, gust.ECONFLICT)
		for _, s := range tc.says {
			if !strings.Contains(b.Error, s) {
				t.Errorf("DELETE %s: %q does not say %q", tc.secret, b.Error, s)
			}
		}
		var body struct {
			UsedBy []struct {
				Function string
				Version  int
			}
		}
		if err := json.Unmarshal(r.body, &body); err != nil || len(body.UsedBy) != 1 {
			t.Errorf("DELETE %s: usedBy in %s: %v", tc.secret, r.body, err)
		}
	}
	list, err := c.Secrets(ctx)
	if err != nil || len(list) != 6 {
		t.Fatalf("after refusals: %+v %v", list, err)
	}
	if r := do(t, "GET", n.URL()+"/fn/db", nil); r.status != 200 || !strings.HasPrefix(string(r.body), "present=true") {
		t.Fatalf("db after refusals: %d %s", r.status, r.body)
	}

	for _, name := range []string{"OLD_ONLY", "UNUSED"} {
		r := deleteSecret(t, n, name)
		if r.status != 200 || !strings.Contains(string(r.body), `"failing": []`) {
			t.Fatalf("DELETE %s: %d %s", name, r.status, r.body)
		}
	}
	wantError(t, deleteSecret(t, n, "UNUSED"), http.StatusNotFound, gust.ENOTFOUND)
	wantError(t, deleteSecret(t, n, "DB_PASSWORD?force=perhaps"), http.StatusBadRequest, gust.EINVALID)

	failing, err := c.RemoveSecret(ctx, "DB_PASSWORD", true)
	if err != nil || len(failing) != 1 || failing[0].Function != "db" || failing[0].Version != 2 || failing[0].Aliases[0] != "live" {
		t.Fatalf("forced remove: %+v %v", failing, err)
	}
	// Instances loaded with the value keep it; once loaded again, here
	// after a restart, db cannot start.
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	n.Close(closeCtx)
	cancel()
	n, c = testNode(t, dir, nil)
	r := do(t, "GET", n.URL()+"/fn/db", nil)
	if b := wantError(t, r, http.StatusServiceUnavailable, gust.EUNAVAILABLE); !strings.Contains(b.Error, "DB_PASSWORD") {
		t.Fatalf("db without its secret: %s", b.Error)
	}
	// Once no aliased version uses it, it goes without force.
	deploy(t, c, "canary", gust.Spec{}, code)
	if _, err := c.SetAlias(ctx, "canary", "beta", []gust.AliasTarget{{Version: 3, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSecret(ctx, "CANARY_KEY"); err != nil {
		t.Fatalf("CANARY_KEY after beta moved on: %v", err)
	}
}
