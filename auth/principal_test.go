package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
)

// The route Require admits finds who the request authenticated as, and can
// ask for more scope than the route's own.
func TestRequirePassesThePrincipalOn(t *testing.T) {
	dir := t.TempDir()
	a, path, _, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var got *Principal
	var permits error
	h := (&Tokens{admin: a}).Require(ScopeDeploy)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = PrincipalFrom(r.Context())
		permits = Permits(r.Context(), ScopeAdmin, "fn")
	}))
	r := httptest.NewRequest("POST", "/v1/functions/fn/versions", nil)
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got == nil || got.TokenID != "admin" || got.Scope != ScopeAdmin || permits != nil {
		t.Fatalf("principal %+v, Permits(admin) = %v", got, permits)
	}

	deploy := WithPrincipal(context.Background(), &Principal{TokenID: "tok1", Scope: ScopeDeploy, Functions: []string{"fn"}})
	if err := Permits(deploy, ScopeDeploy, "fn"); err != nil {
		t.Fatalf("deploy token on its function: %v", err)
	}
	if err := Permits(deploy, ScopeAdmin, "fn"); gust.ErrorCode(err) != gust.EFORBIDDEN || !strings.Contains(gust.ErrorMessage(err), `"admin"`) {
		t.Fatalf("deploy token asking for admin: %v", err)
	}
	if err := Permits(context.Background(), ScopeRead, ""); gust.ErrorCode(err) != gust.EFORBIDDEN {
		t.Fatalf("no principal: %v", err)
	}
}
