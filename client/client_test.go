package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
)

const token = "s3cret"

// recorded is what the test server saw of one request.
type recorded struct {
	Method, Path, RawPath, Query, Auth, ContentType string
	Body                                            []byte
	Parts                                           map[string]part
}

type part struct {
	FileName, ContentType string
	Data                  []byte
}

// server is an httptest server on 127.0.0.1 that records every request
// and answers with the handler the test sets for its route.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	answer func(w http.ResponseWriter, r *http.Request)
}

func newServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{answer: answer}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve)}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	rec := recorded{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"),
	}
	if mt, params, err := mime.ParseMediaType(rec.ContentType); err == nil && mt == "multipart/form-data" {
		rec.Parts = map[string]part{}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(p)
			rec.Parts[p.FormName()] = part{FileName: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data}
		}
	} else {
		rec.Body, _ = io.ReadAll(r.Body)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()
	s.answer(w, r)
}

func (s *server) last(t *testing.T) recorded {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("server saw no request")
	}
	return s.reqs[len(s.reqs)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fn(name string) gust.Function {
	return gust.Function{Name: name, Live: 2, LatestVersion: 2, Aliases: map[string]gust.Alias{
		gust.AliasLive: {Name: gust.AliasLive, Targets: []gust.AliasTarget{{Version: 2, Weight: 100}}},
	}}
}

func TestRequestShapes(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodDelete && r.URL.Path == "/v1/functions/hello":
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/versions") && r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"versions": []gust.Version{{Function: "hello", Number: 1}, {Function: "hello", Number: 2}}})
		case strings.Contains(r.URL.Path, "/versions/"):
			writeJSON(w, 200, gust.Version{Function: "hello", Number: 2})
		case r.URL.Path == "/v1/functions":
			writeJSON(w, 200, map[string]any{"functions": []gust.Function{fn("a"), fn("b")}})
		case r.URL.Path == "/v1/status" || r.URL.Path == "/v1/usage":
			writeJSON(w, 200, map[string]any{"memoryBudgetMB": 1024, "future": true})
		default:
			writeJSON(w, 200, fn("hello"))
		}
	})
	c := client.New(s.URL+"/", token)
	ctx := context.Background()

	tests := []struct {
		name                string
		call                func() error
		method, path, query string
		body                string
	}{
		{"functions", func() error {
			fs, err := c.Functions(ctx)
			if err == nil && (len(fs) != 2 || fs[1].Name != "b") {
				t.Errorf("functions = %+v", fs)
			}
			return err
		}, "GET", "/v1/functions", "", ""},
		{"function", func() error { _, err := c.Function(ctx, "hello"); return err }, "GET", "/v1/functions/hello", "", ""},
		{"delete", func() error { return c.Delete(ctx, "hello") }, "DELETE", "/v1/functions/hello", "", ""},
		{"versions", func() error {
			vs, err := c.Versions(ctx, "hello")
			if err == nil && (len(vs) != 2 || vs[0].Number != 1) {
				t.Errorf("versions = %+v", vs)
			}
			return err
		}, "GET", "/v1/functions/hello/versions", "", ""},
		{"version", func() error { _, err := c.Version(ctx, "hello", 2); return err }, "GET", "/v1/functions/hello/versions/2", "", ""},
		{"rollback", func() error { _, err := c.Rollback(ctx, "hello", 1); return err }, "POST", "/v1/functions/hello/rollback", "", `{"version":1}`},
		{"set alias", func() error {
			_, err := c.SetAlias(ctx, "hello", "canary", []gust.AliasTarget{{Version: 3, Weight: 90}, {Version: 4, Weight: 10}})
			return err
		}, "PUT", "/v1/functions/hello/aliases/canary", "", `{"targets":[{"version":3,"weight":90},{"version":4,"weight":10}]}`},
		{"delete alias", func() error { _, err := c.DeleteAlias(ctx, "hello", "canary"); return err }, "DELETE", "/v1/functions/hello/aliases/canary", "", ""},
		{"status", func() error {
			raw, err := c.Status(ctx)
			if err == nil && !strings.Contains(string(raw), `"future":true`) {
				t.Errorf("status lost unknown fields: %s", raw)
			}
			return err
		}, "GET", "/v1/status", "", ""},
		{"usage", func() error {
			_, err := c.Usage(ctx, client.UsageQuery{Function: "hello", Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)})
			return err
		}, "GET", "/v1/usage", "function=hello&since=2025-01-02T03%3A04%3A05Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			got := s.last(t)
			if got.Method != tt.method || got.Path != tt.path || got.Query != tt.query {
				t.Errorf("request = %s %s?%s, want %s %s?%s", got.Method, got.Path, got.Query, tt.method, tt.path, tt.query)
			}
			if got.Auth != "Bearer "+token {
				t.Errorf("Authorization = %q", got.Auth)
			}
			if tt.body != "" {
				if strings.TrimSpace(string(got.Body)) != tt.body {
					t.Errorf("body = %s, want %s", got.Body, tt.body)
				}
				if got.ContentType != "application/json" {
					t.Errorf("Content-Type = %q", got.ContentType)
				}
			}
		})
	}
}

func TestNameIsEscaped(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, fn("x")) })
	c := client.New(s.URL, token)
	if _, err := c.Function(context.Background(), "../status"); err != nil {
		t.Fatal(err)
	}
	if got := s.last(t).RawPath; got != "/v1/functions/..%2Fstatus" {
		t.Errorf("path = %q: a name must stay one path segment", got)
	}
}

func TestDeployMultipart(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, gust.Version{Function: "hello", Number: 3, CodeDigest: "sha256:ab"})
	})
	c := client.New(s.URL, token)
	spec := gust.Spec{Runtime: gust.RuntimeWasm, MemoryMB: 64, Timeout: gust.Duration(10 * time.Second), Env: map[string]string{"A": "1"}}
	v, err := c.Deploy(context.Background(), "hello", spec, "/some/dir/hello.wasm", strings.NewReader("\x00asm code"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Number != 3 {
		t.Errorf("version = %d, want 3", v.Number)
	}
	got := s.last(t)
	if got.Method != "POST" || got.Path != "/v1/functions/hello/versions" || got.Auth != "Bearer "+token {
		t.Errorf("request = %s %s auth %q", got.Method, got.Path, got.Auth)
	}
	sp, ok := got.Parts["spec"]
	if !ok {
		t.Fatalf("no spec part; parts: %v", got.Parts)
	}
	var sent gust.Spec
	if err := json.Unmarshal(sp.Data, &sent); err != nil {
		t.Fatalf("spec part %q: %v", sp.Data, err)
	}
	if sent.Runtime != "wasm" || sent.MemoryMB != 64 || sent.Timeout.D() != 10*time.Second || sent.Env["A"] != "1" {
		t.Errorf("spec = %+v", sent)
	}
	if sp.FileName != "" {
		t.Errorf("spec part has a file name %q; it must be a form value", sp.FileName)
	}
	cp := got.Parts["code"]
	if string(cp.Data) != "\x00asm code" || cp.FileName != "hello.wasm" {
		t.Errorf("code part = %q file %q", cp.Data, cp.FileName)
	}
}

// failingReader fails mid-stream, as a file on a bad disk would.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestDeployCodeReadError(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 201, gust.Version{}) })
	c := client.New(s.URL, token)
	_, err := c.Deploy(context.Background(), "hello", gust.Spec{}, "x.wasm", failingReader{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || gust.ErrorCode(err) == gust.EUNAVAILABLE {
		t.Fatalf("err = %v (%s), want the read error, not a network one", err, gust.ErrorCode(err))
	}
}

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(w http.ResponseWriter)
		code     string
		contains string
	}{
		{"json error", func(w http.ResponseWriter) {
			writeJSON(w, 404, map[string]string{"error": "function \"x\" not found", "code": gust.ENOTFOUND})
		}, gust.ENOTFOUND, `function "x" not found`},
		{"unauthorized", func(w http.ResponseWriter) {
			writeJSON(w, 401, map[string]string{"error": "bad token", "code": gust.EUNAUTHORIZED})
		}, gust.EUNAUTHORIZED, "bad token"},
		{"plain text", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<h1>Bad Gateway</h1>\n")
		}, gust.EINTERNAL, "HTTP 502 Bad Gateway: <h1>Bad Gateway</h1>"},
		{"empty", func(w http.ResponseWriter) { w.WriteHeader(500) }, gust.EINTERNAL, "HTTP 500"},
		{"bad success body", func(w http.ResponseWriter) { writeJSON(w, 200, "not a function") }, gust.EINTERNAL, "decode response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) { tt.answer(w) })
			_, err := client.New(s.URL, token).Function(context.Background(), "x")
			var ge *gust.Error
			if !errors.As(err, &ge) {
				t.Fatalf("err = %#v, want *gust.Error", err)
			}
			if ge.Code != tt.code || !strings.Contains(ge.Error(), tt.contains) {
				t.Errorf("err = %q (%s), want code %s containing %q", ge.Error(), ge.Code, tt.code, tt.contains)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = client.New("http://"+addr, token).Functions(context.Background())
	if gust.ErrorCode(err) != gust.EUNAVAILABLE {
		t.Errorf("err = %v (code %s), want unavailable", err, gust.ErrorCode(err))
	}
	if _, err := client.New("not a url", token).Functions(context.Background()); gust.ErrorCode(err) != gust.EINVALID {
		t.Errorf("bad base URL: err = %v, want invalid", err)
	}
}

func TestInvoke(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Gust-Invocation-Id", "inv-1")
		switch r.URL.Path {
		case "/fn/missing":
			writeJSON(w, 404, map[string]string{"error": "function \"missing\" not found", "code": gust.ENOTFOUND})
		case "/fn/own-error":
			writeJSON(w, 400, map[string]string{"message": "name is required"})
		default:
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "hi "+r.Header.Get("X-Who"))
		}
	})
	c := client.New(s.URL, token)
	ctx := context.Background()

	resp, err := c.Invoke(ctx, "hello", "POST", "/sub/path?x=1&y=a%20b", strings.NewReader("payload"), http.Header{"X-Who": {"me"}, "Authorization": {"Bearer fn-key"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hi me" || resp.Header.Get("X-Gust-Invocation-Id") != "inv-1" {
		t.Errorf("answer = %q, id %q", body, resp.Header.Get("X-Gust-Invocation-Id"))
	}
	got := s.last(t)
	if got.Method != "POST" || got.Path != "/fn/hello/sub/path" || got.Query != "x=1&y=a%20b" || string(got.Body) != "payload" || got.Auth != "Bearer fn-key" {
		t.Errorf("request = %+v", got)
	}

	resp, err = c.Invoke(ctx, "missing", "", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.last(t).Auth; got != "" {
		t.Errorf("Authorization = %q: the admin token must never reach a function", got)
	}
	_, ierr := client.InvokeError(resp)
	resp.Body.Close()
	if gust.ErrorCode(ierr) != gust.ENOTFOUND || s.last(t).Method != "GET" {
		t.Errorf("gust error: err = %v", ierr)
	}

	resp, err = c.Invoke(ctx, "own-error", "GET", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, ierr := client.InvokeError(resp)
	if ierr != nil {
		t.Fatalf("a function's own error answer was taken for gust's: %v", ierr)
	}
	body, _ = io.ReadAll(r)
	resp.Body.Close()
	if !strings.Contains(string(body), "name is required") {
		t.Errorf("function body lost: %q", body)
	}

	resp, err = c.Invoke(ctx, "hello@canary", "GET", "/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := s.last(t).Path; got != "/fn/hello@canary/" {
		t.Errorf("path = %q, want the alias kept for the gateway", got)
	}

	if _, err := c.Invoke(ctx, "hello", "GET", "http://elsewhere/x", nil, nil); gust.ErrorCode(err) != gust.EINVALID {
		t.Errorf("absolute path: err = %v, want invalid", err)
	}
}
