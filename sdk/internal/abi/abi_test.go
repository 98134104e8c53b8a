package abi

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	in := &Request{
		Method: "POST",
		Path:   "/a/b",
		Query:  "x=1&y=%20",
		Header: Header{"Content-Type": {"text/plain"}, "X-Multi": {"1", "2"}},
		Body:   []byte("body\x00bytes"),
	}
	b := AppendRequest(nil, in)
	out, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
}

func TestRequestWireFormat(t *testing.T) {
	// The bytes the host's encoder writes for GET /p?q with one header and
	// no body: lengths are u32 little-endian.
	want := []byte{
		3, 0, 0, 0, 'G', 'E', 'T',
		2, 0, 0, 0, '/', 'p',
		1, 0, 0, 0, 'q',
		1, 0, 0, 0,
		1, 0, 0, 0, 'a', 1, 0, 0, 0, 'b',
		0, 0, 0, 0,
	}
	r, err := DecodeRequest(want)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "GET" || r.Path != "/p" || r.Query != "q" || r.Header.Get("a") != "b" || len(r.Body) != 0 {
		t.Fatalf("decoded %+v", r)
	}
	if got := AppendRequest(nil, r); !bytes.Equal(got, []byte(strings.Replace(string(want), "a", "A", 1))) {
		t.Fatalf("re-encoded %v", got)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	in := &Response{Status: 404, Header: Header{"X-A": {"1", "2"}}, Body: []byte("nope")}
	out, err := DecodeResponse(AppendResponse(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	// nil and zero status are an empty 200.
	out, err = DecodeResponse(AppendResponse(nil, nil))
	if err != nil || out.Status != 200 || len(out.Body) != 0 {
		t.Fatalf("nil response: %+v, %v", out, err)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := AppendRequest(nil, &Request{Method: "GET", Path: "/", Header: Header{"A": {"b"}}, Body: []byte("x")})
	for i := 0; i < len(good); i++ {
		if _, err := DecodeRequest(good[:i]); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
	if _, err := DecodeRequest(append(good, 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
	huge := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	if _, err := DecodeRequest(huge); err == nil || !strings.Contains(err.Error(), "header count") {
		t.Fatalf("huge header count: %v", err)
	}
}

func TestCanonicalKey(t *testing.T) {
	for in, want := range map[string]string{
		"content-type":     "Content-Type",
		"X-GUST-ID":        "X-Gust-Id",
		"Already-Fine":     "Already-Fine",
		"with space":       "with space",
		"x-forwarded-for":  "X-Forwarded-For",
		"":                 "",
		"www-authenticate": "Www-Authenticate",
	} {
		if got := CanonicalKey(in); got != want {
			t.Errorf("CanonicalKey(%q) = %q, want %q", in, got, want)
		}
	}
	h := Header{}
	h.Add("x-a", "1")
	h.Add("X-A", "2")
	if h.Get("x-A") != "1" || len(h.Values("X-a")) != 2 {
		t.Fatalf("header %v", h)
	}
	h.Set("x-a", "3")
	h.Del("content-type")
	if h.Get("X-A") != "3" || len(h) != 1 {
		t.Fatalf("header %v", h)
	}
}

func TestServe(t *testing.T) {
	defer SetHandler(nil)
	SetHandler(nil)
	resp, err := DecodeResponse(Serve(nil, AppendRequest(nil, &Request{Method: "GET", Path: "/"})))
	if err != nil || resp.Status != 500 || !strings.Contains(string(resp.Body), "no handler registered") {
		t.Fatalf("no handler: %+v %v", resp, err)
	}

	SetHandler(func(r *Request) *Response {
		return &Response{Status: 202, Body: []byte(r.Method + " " + r.Path + " " + r.QueryValue("name"))}
	})
	resp, err = DecodeResponse(Serve(nil, AppendRequest(nil, &Request{Method: "PUT", Path: "/x", Query: "name=a%20b"})))
	if err != nil || resp.Status != 202 || string(resp.Body) != "PUT /x a b" {
		t.Fatalf("got %+v %v", resp, err)
	}

	resp, err = DecodeResponse(Serve(nil, []byte{1, 2}))
	if err != nil || resp.Status != 500 || !strings.Contains(string(resp.Body), "ABI version 1") {
		t.Fatalf("malformed request: %+v %v", resp, err)
	}
}

func TestQueryValue(t *testing.T) {
	r := &Request{Query: "a=1&name=J%C3%BCrgen+X&a=2&b&c=%zz&c=ok&d%20e=f"}
	for name, want := range map[string]string{
		"a": "1", "name": "Jürgen X", "b": "", "c": "ok", "d e": "f", "missing": "",
	} {
		if got := r.QueryValue(name); got != want {
			t.Errorf("QueryValue(%q) = %q, want %q", name, got, want)
		}
	}
}

// Version 2 carries the raw path after the path; version 1, which a host
// that predates version 2 sends to gust_handle, does not, and decodes as
// before.
func TestRequestV2(t *testing.T) {
	in := &Request{
		Method: "GET", Path: "/a/b", RawPath: "/a%2Fb", Query: "x=1",
		Header: Header{"X-K": {"v"}}, Body: []byte("body"),
	}
	b := AppendRequestV2(nil, in)
	out, err := DecodeRequestV2(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	want := []byte{
		3, 0, 0, 0, 'G', 'E', 'T',
		2, 0, 0, 0, '/', 'p',
		6, 0, 0, 0, '/', 'p', '%', '2', 'F', 'q',
		1, 0, 0, 0, 'q',
		0, 0, 0, 0,
		0, 0, 0, 0,
	}
	if got := AppendRequestV2(nil, &Request{Method: "GET", Path: "/p", RawPath: "/p%2Fq", Query: "q"}); !bytes.Equal(got, want) {
		t.Fatalf("encoded %v\nwant    %v", got, want)
	}

	v1 := AppendRequest(nil, in)
	out, err = DecodeRequest(v1)
	if err != nil {
		t.Fatal(err)
	}
	if out.Path != "/a/b" || out.RawPath != "" || out.Query != "x=1" || out.Header.Get("X-K") != "v" || string(out.Body) != "body" {
		t.Fatalf("version 1 decoded %+v", out)
	}
	// The two encodings differ, and neither decodes as the other.
	if _, err := DecodeRequest(b); err == nil {
		t.Fatal("a version 2 request decoded as version 1")
	}
	if _, err := DecodeRequestV2(v1); err == nil {
		t.Fatal("a version 1 request decoded as version 2")
	}
}
