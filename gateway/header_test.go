package gateway

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/gustfaas/gust"
)

func TestForwardHeaderDropsWhatFunctionsMustNotSee(t *testing.T) {
	r := httptest.NewRequest("POST", "http://example.test/fn/hello/x", nil)
	r.Header = http.Header{
		"Accept":               {"text/plain"},
		"X-Multi":              {"a", "b"},
		"Connection":           {"keep-alive"},
		"Keep-Alive":           {"timeout=5"},
		"Proxy-Authorization":  {"Basic secret"},
		"Te":                   {"trailers"},
		"Transfer-Encoding":    {"chunked"},
		"Upgrade":              {"websocket"},
		"Authorization-Gust":   {"reserved"},
		"X-Gust-Auth-Subject":  {"forged"},
		"x-gust-auth-role":     {"forged too"}, // not canonical: dropped all the same
		"X-Gust-Authenticated": {"kept: not the X-Gust-Auth- prefix"},
	}
	got := ForwardHeader(r)
	want := http.Header{
		"Accept":               {"text/plain"},
		"X-Multi":              {"a", "b"},
		"X-Gust-Authenticated": {"kept: not the X-Gust-Auth- prefix"},
		"Host":                 {"example.test"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ForwardHeader = %v\nwant %v", got, want)
	}
	// The function's copy is its own map: adding to it leaves r alone.
	got.Set("X-Gust-Auth-Subject", "verified")
	if r.Header.Get("Host") != "" || r.Header.Get("X-Gust-Auth-Subject") != "forged" {
		t.Fatalf("request header changed: %v", r.Header)
	}
}

func TestWriteResponseKeepsOnlyEndToEndHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header()[HeaderInvocationID] = []string{"the-gateway's"}
	writeResponse(rec, &gust.Response{
		Status: 201,
		Header: map[string][]string{
			"content-type":         {"text/plain"},
			"X-Custom":             {"1", "2"},
			"Connection":           {"close"},
			"transfer-encoding":    {"chunked"},
			"Content-Length":       {"999"},
			"x-gust-invocation-id": {"the function's"},
		},
		Body: []byte("made"),
	})
	res := rec.Result()
	if res.StatusCode != 201 {
		t.Fatalf("status %d, want 201", res.StatusCode)
	}
	for k, want := range map[string][]string{
		"Content-Type":     {"text/plain"},
		"X-Custom":         {"1", "2"},
		HeaderInvocationID: {"the-gateway's"},
	} {
		if got := res.Header.Values(k); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"Connection", "Transfer-Encoding", "Content-Length"} {
		if v := res.Header.Values(k); len(v) != 0 {
			t.Errorf("%s = %q went to the client", k, v)
		}
	}
}

func TestParsePath(t *testing.T) {
	for _, c := range []struct{ in, name, ref, rest string }{
		{"/fn/hello", "hello", "", "/"},
		{"/fn/hello/", "hello", "", "/"},
		{"/fn/hello/a/b", "hello", "", "/a/b"},
		{"/fn/hello@3/a", "hello", "3", "/a"},
		{"/fn/hello@canary", "hello", "canary", "/"},
	} {
		name, ref, rest, err := parsePath(c.in)
		if err != nil || name != c.name || ref != c.ref || rest != c.rest {
			t.Errorf("parsePath(%q) = %q, %q, %q, %v; want %q, %q, %q", c.in, name, ref, rest, err, c.name, c.ref, c.rest)
		}
	}
	for _, bad := range []string{"/fn/", "/fn/Hello", "/fn/hello@", "/fn/-x/y"} {
		if _, _, _, err := parsePath(bad); gust.ErrorCode(err) != gust.ENOTFOUND {
			t.Errorf("parsePath(%q): err %v, want ENOTFOUND", bad, err)
		}
	}
}
