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
