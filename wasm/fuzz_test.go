package wasm

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/gustfaas/gust"
)

// The response codec and the CGI parser read what a guest wrote: untrusted
// bytes. They must answer an error, never panic or allocate without bound.

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{200, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 1, 0, 0, 0, 'b', 2, 0, 0, 0, 'h', 'i'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := decodeResponse(b)
		if err == nil && resp == nil {
			t.Fatal("nil response without an error")
		}
	})
}

func FuzzRequestRoundTrip(f *testing.F) {
	f.Add("GET", "/a/b", "x=1", "X-K", "v", []byte("body"))
	f.Add("", "/", "", "", "", []byte{})
	f.Fuzz(func(t *testing.T, method, path, query, hk, hv string, body []byte) {
		req := &gust.Request{Method: method, Path: path, RawPath: path, Query: query, Header: http.Header{hk: {hv}}, Body: body}
		for _, v2 := range []bool{false, true} {
			n, err := requestSize(req, v2)
			if err != nil {
				return
			}
			buf := make([]byte, n)
			encodeRequest(buf, req, v2)
			if !bytes.HasSuffix(buf, body) {
				t.Fatal("encoded request lost the body")
			}
		}
	})
}

func FuzzParseCGI(f *testing.F) {
	f.Add([]byte("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope"))
	f.Add([]byte("Location: /x\n\n"))
	f.Add([]byte("no blank line"))
	f.Add([]byte("\n\nbody only"))
	f.Fuzz(func(t *testing.T, out []byte) {
		resp, err := parseCGI(out)
		if err == nil && (resp == nil || resp.Status < 100 || resp.Status > 999) {
			t.Fatalf("accepted output with status %v", resp)
		}
	})
}
