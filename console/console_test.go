package console_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gustfaas/gust/console"
)

func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, console.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestFiles(t *testing.T) {
	srv := server(t)
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/console/", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/console/index.html", "text/html; charset=utf-8", "<title>gust console</title>"},
		{"/console/app.js", "text/javascript; charset=utf-8", "Authorization"},
		{"/console/style.css", "text/css; charset=utf-8", ":root"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Content-Type") != tc.ctype || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: %d %q, body has %q: %v", tc.path, resp.StatusCode, h.Get("Content-Type"), tc.contains, strings.Contains(string(body), tc.contains))
		}
		if h.Get("Content-Security-Policy") != console.CSP || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Errorf("%s: headers %v", tc.path, h)
		}
		// A revalidation of an unchanged file is a 304 without a body.
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: %d, want 304", tc.path, resp.StatusCode)
		}
	}
	for _, p := range []string{"/console/static/", "/console/static/app.js", "/console/nope.js", "/console/x/", "/console/.."} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// /console/.. is cleaned by the mux to / which is not ours.
		if resp.StatusCode != 404 || strings.Contains(string(body), "<a href") {
			t.Errorf("%s: %d %q, want a plain 404", p, resp.StatusCode, body)
		}
	}
	resp, err := http.Post(srv.URL+"/console/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestStaticFollowsCSP checks the files against what the CSP forbids, so a
// change that would only fail in a browser fails here first.
func TestStaticFollowsCSP(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		b, err := os.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, bad := range []*regexp.Regexp{
			regexp.MustCompile(`<script(\s[^>]*)?>[^<\s]`), // inline script
			regexp.MustCompile(`<style`),                   // inline style sheet
			regexp.MustCompile(`\sstyle=`),                 // style attribute
			regexp.MustCompile(`\son[a-z]+=`),              // inline handler
			regexp.MustCompile(`https?://[^\s"'<>)]*`),     // another origin (the SVG namespace aside)
			regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|eval\(|new Function`),
		} {
			for _, m := range bad.FindAllString(s, -1) {
				if strings.HasPrefix(m, "http://www.w3.org/") {
					continue
				}
				t.Errorf("%s: %q is not allowed by the console's CSP or its rules", name, m)
			}
		}
	}
}
