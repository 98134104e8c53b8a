package routes

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/auth"
	"github.com/gustfaas/gust/gateway"
)

// noTokens refuses every token: the routes under test need only tell a
// route that demands one from a route that does not.
type noTokens struct{}

func (noTokens) Authenticate(context.Context, *http.Request) (*auth.Principal, error) {
	return nil, gust.Errorf(gust.EUNAUTHORIZED, "no token")
}

// cleaningInvoker is a function whose own router cleans paths, as many
// do (path.Clean, http.ServeMux): it serves what the cleaned path names.
type cleaningInvoker struct {
	v     *gust.Version
	calls atomic.Int32
}

func (c *cleaningInvoker) Resolve(context.Context, string, string) (*gust.Version, error) {
	return c.v, nil
}

func (c *cleaningInvoker) Invoke(_ context.Context, _ *gust.Version, req *gust.Request) (*gust.Response, error) {
	c.calls.Add(1)
	return &gust.Response{Status: 200, Body: []byte("served " + path.Clean(req.Path))}, nil
}

// Routes and the function must see one path: a dot segment or "//" that
// the route matches as public but the function's router cleans to /admin
// would skip the auth the /admin route demands. Such paths are refused
// (400 naming the segment) on /fn and on the doors that share its rules;
// the function never runs. Sent over real HTTP, so the request line is
// the client's own escaping.
func TestDotSegmentsCannotSkipRouteAuth(t *testing.T) {
	v := &gust.Version{Function: "f", Number: 1, Spec: gust.Spec{Routes: []gust.Route{
		{Path: "/admin", Auth: "token"},
		{Path: "/public/{rest...}", Auth: "none"},
		{Path: "/{any...}", Auth: "none"},
	}}}
	inv := &cleaningInvoker{v: v}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := New(Config{Tokens: noTokens{}, Logger: quiet})
	srv := httptest.NewServer(gateway.New(gateway.Config{Invoker: inv, Guard: r, NewID: func() string { return "id" }, Logger: quiet}))
	defer srv.Close()

	get := func(target string) (int, string) {
		t.Helper()
		u, err := url.Parse(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(&http.Request{Method: "GET", URL: u, Header: http.Header{}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, _ := get("/fn/f/admin"); code != http.StatusUnauthorized {
		t.Fatalf("/admin without a token: %d, want 401", code)
	}
	for _, tc := range []struct{ target, seg string }{
		{"/fn/f/public/%2E%2E/admin", `".."`},
		{"/fn/f/public/%2e%2e/admin", `".."`},
		{"/fn/f/public/.%2E/admin", `".."`},
		{"/fn/f/public%2F..%2Fadmin", `".."`},
		{"/fn/f/public/../admin", `".."`},
		{"/fn/f/public/%2E/../admin", `"."`},
		{"/fn/f/x/%2E%2E", `".."`},
		{"/fn/f//admin", `"//"`},
		{"/fn/f/public//..//admin", `"//"`},
		{"/fn/f/public%2F%2Fadmin", `"//"`},
	} {
		code, body := get(tc.target)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(body), &e)
		if code != http.StatusBadRequest || !strings.Contains(e.Error, tc.seg) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.target, code, body, tc.seg)
		}
	}
	if n := inv.calls.Load(); n != 0 {
		t.Fatalf("function ran %d times for refused paths", n)
	}
	// What stays served: a trailing slash, dots inside a segment.
	for _, target := range []string{"/fn/f/public/a/", "/fn/f/public/...", "/fn/f/public/.well-known/x", "/fn/f/a..b"} {
		if code, body := get(target); code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", target, code, body)
		}
	}
}

// /async (and every door that parses with gateway.ParsePath) refuses the
// same paths, before the guard in front resolves or admits anything.
func TestDotSegmentsOtherDoor(t *testing.T) {
	for _, p := range []string{"/async/f/public/../admin", "/async/f@live/./x", "/async/f//admin"} {
		_, _, _, err := gateway.ParsePath("/async/", p)
		var ge *gust.Error
		if !errors.As(err, &ge) || gust.ErrorCode(err) != gust.EINVALID {
			t.Errorf("%s: %v, want EINVALID", p, err)
		}
	}
}
