package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gustfaas/gust"
)

// pathInvoker answers with the path, raw path and query it was given.
type pathInvoker struct{}

func (pathInvoker) Resolve(_ context.Context, name, _ string) (*gust.Version, error) {
	return &gust.Version{Function: name, Number: 1}, nil
}

func (pathInvoker) Invoke(_ context.Context, _ *gust.Version, req *gust.Request) (*gust.Response, error) {
	return &gust.Response{Status: 200, Body: []byte(req.Path + " " + req.RawPath + " " + req.Query)}, nil
}

// A function can tell an escaped slash from a separator: RawPath is the
// path after /fn/NAME as the client escaped it, empty when that is the
// default escaping, as net/url's URL.RawPath. Sent over real HTTP, so the
// request line is the client's.
func TestRawPath(t *testing.T) {
	srv := httptest.NewServer(New(Config{Invoker: pathInvoker{}, NewID: func() string { return "id" }}))
	defer srv.Close()
	for _, tc := range []struct{ target, want string }{
		{"/fn/f/a%2Fb", "/a/b /a%2Fb "},
		{"/fn/f@2/a%2Fb?x=%2F", "/a/b /a%2Fb x=%2F"},
		{"/fn/f/a%2fb", "/a/b /a%2fb "}, // as the client wrote it
		{"/fn/f/a%20b", "/a b  "},       // the default escaping: no raw path
		{"/fn/f/a/b", "/a/b  "},
		{"/fn/f", "/  "},
		{"/fn/%66/x%2Fy", "/x/y /x%2Fy "}, // an escaped name does not shift the tail
		{"/fn/f%2Fx/y", "/x/y  "},         // a tail that does not decode to the path is dropped
		{"/fn/f/%41", "/A /%41 "},
	} {
		u, err := url.Parse(srv.URL + tc.target)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(&http.Request{Method: "GET", URL: u, Header: http.Header{}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != tc.want {
			t.Errorf("%s: %d %q, want %q", tc.target, resp.StatusCode, b, tc.want)
		}
	}
}

// Other doors get the same rule through RawPath.
func TestRawPathOtherDoor(t *testing.T) {
	r := httptest.NewRequest("POST", "http://x/async/f@live/a%2Fb", nil)
	_, _, rest, err := ParsePath("/async/", r.URL.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got := RawPath("/async/", r, rest); rest != "/a/b" || got != "/a%2Fb" {
		t.Fatalf("rest %q raw %q", rest, got)
	}
}
