package abi

import (
	"strings"
	"testing"
)

// helloRequest is what the gateway sends for GET /?name=bench: a few
// canonical headers and the invocation id, which differs per call.
func helloRequest(id string) []byte {
	return AppendRequest(nil, &Request{
		Method: "GET",
		Path:   "/",
		Query:  "name=bench",
		Header: Header{
			"Accept":               {"*/*"},
			"User-Agent":           {"bench"},
			"X-Gust-Invocation-Id": {id},
		},
	})
}

// A warm call allocates once, for the request's strings together; the
// request, its header map and a response from TextResponse are reused.
func TestServeWarmAllocations(t *testing.T) {
	defer SetHandler(nil)
	SetHandler(func(r *Request) *Response {
		return TextResponse(200, "text/plain; charset=utf-8", "Hello, "+r.QueryValue("name")+"!\n")
	})
	req := helloRequest("inv-1")
	var out []byte
	out = Serve(out[:0], req) // first call fills the pools
	allocs := testing.AllocsPerRun(100, func() { out = Serve(out[:0], req) })
	// One for the request's strings, one for the handler's concatenation.
	t.Logf("warm Serve: %.1f allocations per call", allocs)
	if allocs > 2 {
		t.Fatalf("warm Serve made %.1f allocations, want at most 2", allocs)
	}
	resp, err := DecodeResponse(out)
	if err != nil || resp.Status != 200 || string(resp.Body) != "Hello, bench!\n" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("response %+v %v", resp, err)
	}
}

// What a handler may keep (strings) survives the next call; the reused
// header map carries nothing over from one call to the next.
func TestServeReuseKeepsStringsStable(t *testing.T) {
	defer SetHandler(nil)
	var kept []string
	var lastHeader Header
	SetHandler(func(r *Request) *Response {
		kept = append(kept, r.Method, r.Path, r.Query, r.Header.Get("X-Gust-Invocation-Id"), PathQuery(r))
		lastHeader = Header{}
		for k, v := range r.Header {
			lastHeader[k] = append([]string(nil), v...)
		}
		return TextResponse(200, "text/plain", r.Path)
	})
	Serve(nil, AppendRequest(nil, &Request{Method: "PUT", Path: "/a", Query: "x=1",
		Header: Header{"x-one": {"1"}, "X-Multi": {"a", "b"}, "X-Gust-Invocation-Id": {"id-1"}}}))
	if len(lastHeader) != 3 || lastHeader.Get("X-One") != "1" || len(lastHeader["X-Multi"]) != 2 {
		t.Fatalf("first header %v", lastHeader)
	}
	resp, _ := DecodeResponse(Serve(nil, AppendRequest(nil, &Request{Method: "MKCOL", Path: "/bb", Query: "",
		Header: Header{"X-Gust-Invocation-Id": {"id-2"}}, Body: []byte("zz")})))
	if string(resp.Body) != "/bb" {
		t.Fatalf("second body %q", resp.Body)
	}
	want := []string{"PUT", "/a", "x=1", "id-1", "/a?x=1", "MKCOL", "/bb", "", "id-2", "/bb?"}
	if strings.Join(kept, "|") != strings.Join(want, "|") {
		t.Fatalf("kept %q, want %q", kept, want)
	}
	if len(lastHeader) != 1 {
		t.Fatalf("second header %v: the first call's entries leaked", lastHeader)
	}
}

// A response from NewResponse outside a call is the caller's own; one made
// during a call is recycled at the next call.
func TestNewResponseOutsideCallIsOwned(t *testing.T) {
	defer SetHandler(nil)
	fixed := TextResponse(404, "text/plain", "gone")
	SetHandler(func(r *Request) *Response {
		if r.Path == "/fixed" {
			return fixed
		}
		return TextResponse(200, "text/plain", "other")
	})
	for _, p := range []string{"/fixed", "/x", "/fixed"} {
		resp, err := DecodeResponse(Serve(nil, AppendRequest(nil, &Request{Method: "GET", Path: p})))
		if err != nil {
			t.Fatal(err)
		}
		if p == "/fixed" && (resp.Status != 404 || string(resp.Body) != "gone") {
			t.Fatalf("fixed response changed: %d %q", resp.Status, resp.Body)
		}
	}
	if string(fixed.Body) != "gone" || fixed.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("fixed response changed: %+v", fixed)
	}
}
