package sdk

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gustfaas/gust/sdk/internal/abi"
)

func TestServeAdaptsNetHTTP(t *testing.T) {
	var got *http.Request
	var body string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Set("X-Seen", r.URL.Query().Get("q"))
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusTeapot) // ignored, like net/http
		io.WriteString(w, "<html><body>hi</body></html>")
	})
	resp := serve(h, &abi.Request{
		Method: "POST",
		Path:   "/items/1",
		Query:  "q=a+b",
		Header: abi.Header{"Host": {"example.com"}, "X-Token": {"t"}},
		Body:   []byte("payload"),
	})
	if got.Method != "POST" || got.URL.Path != "/items/1" || got.RequestURI != "/items/1?q=a+b" {
		t.Fatalf("request %s %s %q", got.Method, got.URL, got.RequestURI)
	}
	if got.Host != "example.com" || got.Header.Get("Host") != "" || got.Header.Get("X-Token") != "t" {
		t.Fatalf("host %q, header %v", got.Host, got.Header)
	}
	if body != "payload" || got.ContentLength != 7 {
		t.Fatalf("body %q, length %d", body, got.ContentLength)
	}
	if resp.Status != 201 || resp.Header.Get("X-Seen") != "a b" {
		t.Fatalf("response %d %v", resp.Status, resp.Header)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("sniffed Content-Type %q", ct)
	}
}

func TestServeDefaults(t *testing.T) {
	resp := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != http.NoBody {
			t.Error("empty body is not http.NoBody")
		}
	}), &abi.Request{Method: "GET", Path: "/"})
	if resp.Status != 200 || len(resp.Body) != 0 || resp.Header.Get("Content-Type") != "" {
		t.Fatalf("empty handler: %+v", resp)
	}

	resp = serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // set but empty: no sniffing, as in net/http
		w.Write([]byte("plain"))
	}), &abi.Request{Method: "GET", Path: "/"})
	if _, set := resp.Header["Content-Type"]; !set || resp.Header.Get("Content-Type") != "" {
		t.Fatalf("Content-Type sniffed although set: %v", resp.Header)
	}

	resp = serve(http.NotFoundHandler(), &abi.Request{Method: "GET", Path: "/"})
	if resp.Status != 404 || !strings.Contains(string(resp.Body), "404") {
		t.Fatalf("NotFoundHandler: %d %q", resp.Status, resp.Body)
	}
}

// serve runs one request through a fresh adapter for h.
func serve(h http.Handler, r *abi.Request) *abi.Response { return (&adapter{h: h}).serve(r) }

// The adapter reuses its http.Request, URL, body reader and
// ResponseWriter: a warm call through it allocates only what decoding the
// request does (one allocation for its strings) and what the handler does.
func TestServeWarmAllocations(t *testing.T) {
	defer abi.SetHandler(nil)
	contentType := []string{"text/plain; charset=utf-8"}
	var seen string
	HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.RequestURI
		w.Header()["Content-Type"] = contentType
		io.WriteString(w, "Hello, world!\n")
	})
	in := &abi.Request{
		Method: "POST",
		Path:   "/hello",
		Query:  "name=bench",
		Header: abi.Header{"Host": {"example.com"}, "X-Gust-Invocation-Id": {"inv-1"}},
		Body:   []byte("payload"),
	}
	// Both versions of the ABI: gust_handle and gust_handle_v2.
	for v, serve := range map[int]func(dst, req []byte) []byte{1: abi.Serve, 2: abi.ServeV2} {
		req := abi.AppendRequest(nil, in)
		if v == 2 {
			req = abi.AppendRequestV2(nil, in)
		}
		var out []byte
		out = serve(out[:0], req)
		allocs := testing.AllocsPerRun(100, func() { out = serve(out[:0], req) })
		t.Logf("warm call, ABI version %d: %.1f allocations", v, allocs)
		if allocs > 1 {
			t.Fatalf("warm call, ABI version %d, made %.1f allocations, want at most 1", v, allocs)
		}
		resp, err := abi.DecodeResponse(out)
		if err != nil || resp.Status != 200 || string(resp.Body) != "Hello, world!\n" || seen != "/hello?name=bench" {
			t.Fatalf("ABI version %d: response %+v %v, RequestURI %q", v, resp, err, seen)
		}
	}
}

// Reuse must not carry one call's state into the next: headers the
// handler set, the status, the body and the request's headers.
func TestServeReuseIsolatesCalls(t *testing.T) {
	defer abi.SetHandler(nil)
	var hosts, tokens []string
	HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		tokens = append(tokens, r.Header.Get("X-Token"))
		if r.URL.Path == "/first" {
			w.Header().Set("X-First", "1")
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "first")
			return
		}
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "second:"+string(b))
	})
	first, _ := abi.DecodeResponse(abi.Serve(nil, abi.AppendRequest(nil, &abi.Request{Method: "GET", Path: "/first",
		Header: abi.Header{"Host": {"a.example"}, "X-Token": {"t"}}})))
	second, _ := abi.DecodeResponse(abi.Serve(nil, abi.AppendRequest(nil, &abi.Request{Method: "POST", Path: "/second", Body: []byte("b")})))
	if first.Status != 202 || string(first.Body) != "first" || first.Header.Get("X-First") != "1" {
		t.Fatalf("first %+v", first)
	}
	if second.Status != 200 || string(second.Body) != "second:b" || second.Header.Get("X-First") != "" {
		t.Fatalf("second %+v: state leaked from the first call", second)
	}
	if strings.Join(hosts, ",") != "a.example," || strings.Join(tokens, ",") != "t," {
		t.Fatalf("hosts %q tokens %q", hosts, tokens)
	}
}

// An escaped slash stays distinguishable from a separator, as with
// net/http: URL.RawPath is set and EscapedPath and RequestURI give the
// client's escaping back.
func TestServeRawPath(t *testing.T) {
	var got *http.Request
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r })
	for _, tc := range []struct {
		path, raw, query, escaped, uri string
	}{
		{"/a/b", "/a%2Fb", "", "/a%2Fb", "/a%2Fb"},
		{"/a/b", "/a%2Fb", "x=%2F", "/a%2Fb", "/a%2Fb?x=%2F"},
		{"/a/b", "", "x=1", "/a/b", "/a/b?x=1"},
		{"/a b", "", "", "/a%20b", "/a%20b"},
		// A raw path that does not decode to the path is ignored, as net/url does.
		{"/a/b", "/x%2Fy", "", "/a/b", "/a/b"},
	} {
		serve(h, &abi.Request{Method: "GET", Path: tc.path, RawPath: tc.raw, Query: tc.query})
		if got.URL.Path != tc.path || got.URL.RawPath != tc.raw || got.URL.EscapedPath() != tc.escaped || got.RequestURI != tc.uri {
			t.Errorf("%q %q: URL.Path %q RawPath %q EscapedPath %q RequestURI %q; want escaped %q, URI %q",
				tc.path, tc.raw, got.URL.Path, got.URL.RawPath, got.URL.EscapedPath(), got.RequestURI, tc.escaped, tc.uri)
		}
	}
}
