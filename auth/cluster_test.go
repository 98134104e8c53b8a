package auth_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/auth"
	"github.com/gustfaas/gust/broker"
)

// Nodes that share one JetStream accept each other's bootstrap admin
// tokens; a node that makes a new one withdraws its old one everywhere.
func TestBootstrapAdminTokensWorkOnEveryNode(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	open := func(dir string) (*auth.Tokens, string) {
		t.Helper()
		a, path, _, err := auth.LoadOrCreate(dir)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := auth.OpenTokens(ctx, b.JetStream(), 1, a)
		if err != nil {
			t.Fatal(err)
		}
		return ts, strings.TrimSpace(string(tok))
	}
	authAs := func(ts *auth.Tokens, tok string) (*auth.Principal, error) {
		r := httptest.NewRequest("GET", "/v1/functions", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return ts.Authenticate(ctx, r)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	nodeA, tokA := open(dirA)
	nodeB, tokB := open(dirB)

	for _, c := range []struct {
		on  *auth.Tokens
		tok string
	}{{nodeA, tokA}, {nodeA, tokB}, {nodeB, tokA}, {nodeB, tokB}} {
		p, err := authAs(c.on, c.tok)
		if err != nil || p.Scope != auth.ScopeAdmin {
			t.Fatalf("admin token on a node sharing the bucket: %+v, %v", p, err)
		}
	}
	if _, err := authAs(nodeB, "gust_"+strings.Repeat("ab", 32)); gust.ErrorCode(err) != gust.EUNAUTHORIZED {
		t.Fatalf("unknown token of the bootstrap shape: %v", err)
	}
	list, err := nodeA.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var admins []string
	for _, tk := range list {
		if strings.HasPrefix(tk.ID, "admin-") {
			admins = append(admins, tk.ID)
		}
	}
	if len(admins) != 2 {
		t.Fatalf("token list shows %v, want both nodes' bootstrap tokens", admins)
	}
	if err := nodeA.Revoke(ctx, admins[0]); gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), "admin.token") {
		t.Fatalf("revoking a bootstrap token: %v", err)
	}

	// Node A's operator replaces its token: the old one stops working on B.
	if err := os.Remove(filepath.Join(dirA, auth.TokenFile)); err != nil {
		t.Fatal(err)
	}
	_, newA := open(dirA)
	if _, err := authAs(nodeB, tokA); gust.ErrorCode(err) != gust.EUNAUTHORIZED {
		t.Fatalf("node A's replaced token on node B: %v", err)
	}
	if p, err := authAs(nodeB, newA); err != nil || p.Scope != auth.ScopeAdmin {
		t.Fatalf("node A's new token on node B: %+v, %v", p, err)
	}
}
