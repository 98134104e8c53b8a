package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

const testToken = "tok-123"

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// request is what the fake admin API saw.
type request struct {
	Method, Path, Query, Auth string
	Header                    http.Header
	Body                      []byte
	Parts                     map[string]filePart
}

type filePart struct {
	FileName string
	Data     []byte
}

// fakeAPI is an httptest server on 127.0.0.1 answering the admin API routes
// with canned documents and recording what it was sent. The real API is
// tested by package api; this one checks what the CLI sends and prints.
type fakeAPI struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	mux := http.NewServeMux()
	hello := gust.Function{
		Name: "hello", Live: 3, LatestVersion: 4, UpdatedAt: testNow.Add(-5 * time.Minute),
		Aliases: map[string]gust.Alias{
			"live":   {Name: "live", Targets: []gust.AliasTarget{{Version: 3, Weight: 90}, {Version: 4, Weight: 10}}},
			"stable": {Name: "stable", Targets: []gust.AliasTarget{{Version: 2, Weight: 100}}},
		},
	}
	mux.HandleFunc("GET /v1/functions", func(w http.ResponseWriter, r *http.Request) {
		other := gust.Function{Name: "other", Live: 1, LatestVersion: 1, UpdatedAt: testNow.Add(-3 * time.Hour),
			Aliases: map[string]gust.Alias{"live": {Name: "live", Targets: []gust.AliasTarget{{Version: 1, Weight: 100}}}}}
		writeJSON(w, 200, map[string]any{"functions": []gust.Function{hello, other}})
	})
	mux.HandleFunc("GET /v1/functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "hello" {
			writeJSON(w, 404, map[string]string{"error": "function \"" + r.PathValue("name") + "\" not found", "code": gust.ENOTFOUND})
			return
		}
		writeJSON(w, 200, hello)
	})
	mux.HandleFunc("GET /v1/functions/{name}/versions", func(w http.ResponseWriter, r *http.Request) {
		var vs []gust.Version
		for i := 1; i <= 4; i++ {
			vs = append(vs, gust.Version{Function: "hello", Number: i, CreatedAt: testNow.Add(-time.Duration(5-i) * time.Hour),
				Spec: gust.Spec{Runtime: "wasm", MemoryMB: 64 * i}, CodeDigest: "sha256:0123456789abcdef0123"})
		}
		writeJSON(w, 200, map[string]any{"versions": vs})
	})
	mux.HandleFunc("POST /v1/functions/{name}/versions", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") == "late" { // a deploy that lost a race
			writeJSON(w, 201, map[string]any{"function": "late", "version": 3, "live": false, "liveVersion": 4})
			return
		}
		writeJSON(w, 201, gust.Version{Function: r.PathValue("name"), Number: 3})
	})
	mux.HandleFunc("POST /v1/functions/{name}/rollback", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, gust.Function{Name: r.PathValue("name"), Live: 2})
	})
	mux.HandleFunc("PUT /v1/functions/{name}/aliases/{alias}", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Targets []gust.AliasTarget }
		_ = json.Unmarshal(f.last().Body, &body)
		a := r.PathValue("alias")
		writeJSON(w, 200, gust.Function{Name: r.PathValue("name"), Aliases: map[string]gust.Alias{a: {Name: a, Targets: body.Targets}}})
	})
	mux.HandleFunc("DELETE /v1/functions/{name}/aliases/{alias}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, hello)
	})
	mux.HandleFunc("DELETE /v1/functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"version":"dev","memoryBudgetMB":2048,"memoryUsedMB":192,"newField":{"a":1},`+
			`"pools":[{"function":"hello","version":3,"idle":1,"busy":2,"inFlight":2,"memoryMB":64,"coldStarts":5}]}`)
	})
	mux.HandleFunc("GET /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"since":"2025-06-01T11:00:00Z","pricePerGBSecond":0.0000166667,`+
			`"rows":[{"function":"hello","hour":"2025-06-01T11:00:00Z","invocations":10}],`+
			`"functions":[{"function":"hello","invocations":10,"durationUs":1500000,"gbSeconds":0.25}],`+
			`"total":{"invocations":10,"estimatedCost":0.01}}`)
	})
	mux.HandleFunc("/fn/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Gust-Invocation-Id", "inv-42")
		switch {
		case strings.HasPrefix(r.URL.Path, "/fn/missing"):
			writeJSON(w, 404, map[string]string{"error": `function "missing" not found`, "code": gust.ENOTFOUND})
		case strings.HasPrefix(r.URL.Path, "/fn/broken"):
			w.WriteHeader(500)
			_, _ = io.WriteString(w, "oops")
		default:
			_, _ = w.Write(append([]byte("echo:"), f.last().Body...))
		}
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: f.record(mux)}}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), Header: r.Header.Clone()}
		if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
			req.Parts = map[string]filePart{}
			mr := multipart.NewReader(r.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				data, _ := io.ReadAll(p)
				req.Parts[p.FormName()] = filePart{p.FileName(), data}
			}
		} else {
			req.Body, _ = io.ReadAll(r.Body)
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		f.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (f *fakeAPI) last() request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		return request{}
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type result struct {
	stdout, stderr string
	err            error
}

// runCLI runs the CLI in-process, as main does, against url with the test
// token and a clean environment.
func runCLI(t *testing.T, url, stdin string, args ...string) result {
	t.Helper()
	a := &app{getenv: func(string) string { return "" }, now: func() time.Time { return testNow },
		tokenFile: filepath.Join(t.TempDir(), "admin.token")}
	root := newRoot(a)
	var out, errb bytes.Buffer
	root.SetArgs(append([]string{"--url", url, "--token", testToken}, args...))
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	return result{out.String(), errb.String(), err}
}

func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sentSpec(t *testing.T, r request) gust.Spec {
	t.Helper()
	p, ok := r.Parts["spec"]
	if !ok {
		t.Fatalf("no spec part in %s %s", r.Method, r.Path)
	}
	var s gust.Spec
	if err := json.Unmarshal(p.Data, &s); err != nil {
		t.Fatalf("spec %s: %v", p.Data, err)
	}
	return s
}

func TestDeployFlags(t *testing.T) {
	api := newFakeAPI(t)
	code := writeFile(t, filepath.Join(t.TempDir(), "bin", "handler"), "#!/bin/sh\n")
	r := runCLI(t, api.URL, "", "deploy", "hello", "--runtime", "process", "--code", code,
		"--memory", "256", "--timeout", "45s", "--env", "A=1", "--env", "B=x=y",
		"--max-concurrency", "7", "--min-instances", "2", "--idle-timeout", "2m", "--queue-timeout", "500ms",
		"--per-instance-concurrency", "4", "--max-body-bytes", "1024")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.stdout != "deployed hello version 3 (live)\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	req := api.last()
	if req.Method != "POST" || req.Path != "/v1/functions/hello/versions" || req.Auth != "Bearer "+testToken {
		t.Errorf("request = %s %s auth %q", req.Method, req.Path, req.Auth)
	}
	got := sentSpec(t, req)
	want := gust.Spec{Runtime: "process", MemoryMB: 256, Timeout: gust.Duration(45 * time.Second),
		Env: map[string]string{"A": "1", "B": "x=y"}, MaxConcurrency: 7, MinInstances: 2,
		IdleTimeout: gust.Duration(2 * time.Minute), QueueTimeout: gust.Duration(500 * time.Millisecond),
		PerInstanceConcurrency: 4, MaxBodyBytes: 1024}
	if !specEqual(got, want) {
		t.Errorf("spec = %+v\nwant %+v", got, want)
	}
	if p := req.Parts["code"]; string(p.Data) != "#!/bin/sh\n" || p.FileName != "handler" {
		t.Errorf("code part = %q named %q", p.Data, p.FileName)
	}
}

func specEqual(a, b gust.Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestDeployManifestMerge(t *testing.T) {
	api := newFakeAPI(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "out", "fn.wasm"), "\x00asm")
	manifest := writeFile(t, filepath.Join(dir, "gust.yaml"), `
name: hello
code: out/fn.wasm
memory: 64
timeout: 10s
maxConcurrency: 3
env:
  A: "1"
  B: "2"
`)
	// From another directory, so the code path must come from the manifest's.
	r := runCLI(t, api.URL, "", "deploy", "renamed", "-f", manifest, "--memory", "128", "--env", "B=3")
	if r.err != nil {
		t.Fatal(r.err)
	}
	req := api.last()
	if req.Path != "/v1/functions/renamed/versions" {
		t.Errorf("path = %s: NAME must override the manifest's name", req.Path)
	}
	got := sentSpec(t, req)
	want := gust.Spec{Runtime: "wasm", MemoryMB: 128, Timeout: gust.Duration(10 * time.Second), MaxConcurrency: 3,
		Env: map[string]string{"A": "1", "B": "3"}}
	if !specEqual(got, want) {
		t.Errorf("spec = %+v\nwant %+v", got, want)
	}
	if p := req.Parts["code"]; string(p.Data) != "\x00asm" || p.FileName != "fn.wasm" {
		t.Errorf("code part = %q named %q", p.Data, p.FileName)
	}

	r = runCLI(t, api.URL, "", "deploy", "-f", manifest)
	if r.err != nil || api.last().Path != "/v1/functions/hello/versions" {
		t.Errorf("manifest name: err %v, path %s", r.err, api.last().Path)
	}
}

func TestDeployErrors(t *testing.T) {
	api := newFakeAPI(t)
	dir := t.TempDir()
	bin := writeFile(t, filepath.Join(dir, "handler"), "x")
	bad := writeFile(t, filepath.Join(dir, "bad.yaml"), "name: hello\nmemroy: 64\n")
	tests := []struct {
		name     string
		args     []string
		contains string
	}{
		{"unknown manifest field", []string{"deploy", "-f", bad}, `unknown field "memroy"`},
		{"no name", []string{"deploy", "--code", bin, "--runtime", "process"}, "no function name"},
		{"no code", []string{"deploy", "hello", "--runtime", "wasm"}, "no code"},
		{"no runtime for a non-wasm file", []string{"deploy", "hello", "--code", bin}, "no runtime"},
		{"wasm code is a directory", []string{"deploy", "hello", "--code", dir, "--runtime", "wasm"}, "is a directory"},
		{"missing code", []string{"deploy", "hello", "--code", filepath.Join(dir, "nope.wasm")}, "no such file"},
		{"bad env", []string{"deploy", "hello", "--code", bin, "--runtime", "process", "--env", "NOEQUALS"}, "invalid --env"},
		{"bad duration", []string{"deploy", "hello", "--code", bin, "--timeout", "soon"}, "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := api.count()
			r := runCLI(t, api.URL, "", tt.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tt.contains) {
				t.Errorf("err = %v, want one containing %q", r.err, tt.contains)
			}
			if api.count() != before {
				t.Errorf("a request was sent for a deploy that is wrong locally")
			}
		})
	}
}

func TestInvoke(t *testing.T) {
	api := newFakeAPI(t)
	event := writeFile(t, filepath.Join(t.TempDir(), "event.json"), `{"n":1}`)

	r := runCLI(t, api.URL, "", "invoke", "hello", "-d", "@"+event, "--path", "/sub/x?q=1", "-H", "Content-Type: application/json", "-v")
	if r.err != nil {
		t.Fatal(r.err)
	}
	req := api.last()
	if req.Method != "POST" || req.Path != "/fn/hello/sub/x" || req.Query != "q=1" || string(req.Body) != `{"n":1}` ||
		req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s %s?%s %q %v", req.Method, req.Path, req.Query, req.Body, req.Header)
	}
	if r.stdout != `echo:{"n":1}` {
		t.Errorf("stdout = %q: the body must be written as is", r.stdout)
	}
	if req.Auth != "" {
		t.Errorf("Authorization = %q: the admin token must never reach a function", req.Auth)
	}
	if !strings.Contains(r.stderr, "inv-42") || !strings.Contains(r.stderr, "200 OK") {
		t.Errorf("stderr = %q, want status and invocation id", r.stderr)
	}

	r = runCLI(t, api.URL, "from stdin", "invoke", "hello", "-d", "@-", "-X", "put")
	if r.err != nil || api.last().Method != "PUT" || r.stdout != "echo:from stdin" {
		t.Errorf("stdin: err %v, method %s, stdout %q", r.err, api.last().Method, r.stdout)
	}

	r = runCLI(t, api.URL, "", "invoke", "hello")
	if r.err != nil || api.last().Method != "GET" || r.stderr != "" {
		t.Errorf("no data: err %v, method %s, stderr %q", r.err, api.last().Method, r.stderr)
	}
}

func TestInvokeErrors(t *testing.T) {
	api := newFakeAPI(t)
	r := runCLI(t, api.URL, "", "invoke", "missing")
	if got := errorText(r.err); got != `error: function "missing" not found (not_found)` {
		t.Errorf("gust error = %q", got)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q: a gust error is not a response body", r.stdout)
	}

	r = runCLI(t, api.URL, "", "invoke", "broken")
	if r.err == nil || !strings.Contains(r.err.Error(), "500") || r.stdout != "oops" {
		t.Errorf("function error: err %v, stdout %q (want the body passed through and an error)", r.err, r.stdout)
	}

	r = runCLI(t, api.URL, "", "invoke", "hello", "-H", "NoColon")
	if r.err == nil || !strings.Contains(r.err.Error(), "invalid header") {
		t.Errorf("bad header: err %v", r.err)
	}
}

func TestAliasSet(t *testing.T) {
	api := newFakeAPI(t)
	r := runCLI(t, api.URL, "", "alias", "set", "hello", "live", "3=90", "4=10")
	if r.err != nil {
		t.Fatal(r.err)
	}
	req := api.last()
	if req.Method != "PUT" || req.Path != "/v1/functions/hello/aliases/live" ||
		strings.TrimSpace(string(req.Body)) != `{"targets":[{"version":3,"weight":90},{"version":4,"weight":10}]}` {
		t.Errorf("request = %s %s %s", req.Method, req.Path, req.Body)
	}
	if r.stdout != "alias live of hello: 3 (90%), 4 (10%)\n" {
		t.Errorf("stdout = %q", r.stdout)
	}

	r = runCLI(t, api.URL, "", "alias", "set", "hello", "stable", "2")
	if r.err != nil || strings.TrimSpace(string(api.last().Body)) != `{"targets":[{"version":2,"weight":100}]}` {
		t.Errorf("single version: err %v, body %s", r.err, api.last().Body)
	}

	for _, bad := range []string{"3=x", "x", "0", "3=", "=90"} {
		before := api.count()
		r = runCLI(t, api.URL, "", "alias", "set", "hello", "canary", bad)
		if r.err == nil || !strings.Contains(r.err.Error(), "invalid target") || !strings.Contains(r.err.Error(), bad) {
			t.Errorf("%q: err = %v, want a clear local error", bad, r.err)
		}
		if api.count() != before {
			t.Errorf("%q: a malformed target was sent", bad)
		}
	}
}

func TestListings(t *testing.T) {
	api := newFakeAPI(t)
	tests := []struct {
		args []string
		want []string // lines, compared with runs of spaces collapsed
	}{
		{[]string{"ls"}, []string{
			"NAME LIVE LATEST UPDATED",
			"hello 3 (90%), 4 (10%) 4 5m ago",
			"other 1 1 3h ago",
		}},
		{[]string{"versions", "hello"}, []string{
			"VERSION CREATED RUNTIME MEMORY TIMEOUT DIGEST SNAPSHOT ALIASES",
			"1 4h ago wasm 64MB 30s 0123456789ab - -",
			"2 3h ago wasm 128MB 30s 0123456789ab - stable",
			"3 * 2h ago wasm 192MB 30s 0123456789ab - live (90%)",
			"4 * 1h ago wasm 256MB 30s 0123456789ab - live (10%)",
		}},
		{[]string{"alias", "ls", "hello"}, []string{
			"ALIAS TARGETS",
			"live 3 (90%), 4 (10%)",
			"stable 2",
		}},
		{[]string{"status"}, []string{
			"version: dev",
			"memoryBudgetMB: 2048",
			"memoryUsedMB: 192",
			"newField.a: 1",
			"",
			"pools:",
			"FUNCTION VERSION IDLE BUSY IN FLIGHT MEMORY MB COLD STARTS",
			"hello 3 1 2 2 64 5",
		}},
		{[]string{"usage"}, []string{
			"since: 2025-06-01T11:00:00Z",
			"pricePerGBSecond: $0.0000166667",
			"total.invocations: 10",
			"total.estimatedCost: $0.01",
			"",
			"functions:",
			"FUNCTION INVOCATIONS DURATION GB SECONDS",
			"hello 10 1.5s 0.25",
		}},
		{[]string{"usage", "--hourly"}, []string{
			"since: 2025-06-01T11:00:00Z",
			"pricePerGBSecond: $0.0000166667",
			"total.invocations: 10",
			"total.estimatedCost: $0.01",
			"",
			"rows:",
			"FUNCTION HOUR INVOCATIONS",
			"hello 2025-06-01T11:00:00Z 10",
			"",
			"functions:",
			"FUNCTION INVOCATIONS DURATION GB SECONDS",
			"hello 10 1.5s 0.25",
		}},
		{[]string{"rollback", "hello", "2"}, []string{"rolled back hello: version 2 is live"}},
		{[]string{"rm", "hello"}, []string{"deleted hello"}},
		{[]string{"alias", "rm", "hello", "stable"}, []string{"deleted alias stable of hello"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, api.URL, "", tt.args...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			got := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
			for i := range got {
				got[i] = strings.Join(strings.Fields(got[i]), " ")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("output:\n%s\nwant:\n%s", r.stdout, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	api := newFakeAPI(t)
	r := runCLI(t, api.URL, "", "status", "-o", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc["newField"] == nil {
		t.Errorf("status -o json must pass unknown fields through: %v\n%s", err, r.stdout)
	}
	r = runCLI(t, api.URL, "", "ls", "-o", "json")
	var fl struct{ Functions []gust.Function }
	if err := json.Unmarshal([]byte(r.stdout), &fl); err != nil || len(fl.Functions) != 2 {
		t.Errorf("ls -o json: %v\n%s", err, r.stdout)
	}
	if r = runCLI(t, api.URL, "", "ls", "-o", "yaml"); r.err == nil || !strings.Contains(r.err.Error(), "--output") {
		t.Errorf("bad -o: err %v", r.err)
	}
}

func TestUsageQuery(t *testing.T) {
	api := newFakeAPI(t)
	r := runCLI(t, api.URL, "", "usage", "--function", "hello", "--since", "2h", "--until", "2025-06-01T11:30:00Z")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if q := api.last().Query; q != "function=hello&since=2025-06-01T10%3A00%3A00Z&until=2025-06-01T11%3A30%3A00Z" {
		t.Errorf("query = %s", q)
	}
	if r = runCLI(t, api.URL, "", "usage", "--since", "yesterday"); r.err == nil || !strings.Contains(r.err.Error(), "--since") {
		t.Errorf("bad --since: err %v", r.err)
	}
}

func TestTokenResolution(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin.token")
	env := map[string]string{}
	a := &app{getenv: func(k string) string { return env[k] }, tokenFile: file}

	if _, err := a.resolveToken(); err == nil || err.Error() != errNoToken.Error() {
		t.Errorf("no token anywhere: err = %v", err)
	}
	writeFile(t, file, "  from-file\n")
	if tok, err := a.resolveToken(); err != nil || tok != "from-file" {
		t.Errorf("file: %q %v", tok, err)
	}
	env["GUST_TOKEN"] = "from-env"
	if tok, _ := a.resolveToken(); tok != "from-env" {
		t.Errorf("env must win over the file: %q", tok)
	}
	a.token = "from-flag"
	if tok, _ := a.resolveToken(); tok != "from-flag" {
		t.Errorf("flag must win over env: %q", tok)
	}
	a.token = ""
	delete(env, "GUST_TOKEN")
	writeFile(t, file, "\n")
	if _, err := a.resolveToken(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: err = %v", err)
	}

	if a.baseURL() != defaultURL {
		t.Errorf("default URL = %q", a.baseURL())
	}
	env["GUST_URL"] = "http://10.0.0.1:9000"
	if a.baseURL() != "http://10.0.0.1:9000" {
		t.Errorf("env URL = %q", a.baseURL())
	}
}

func TestTokenFromFileIsSent(t *testing.T) {
	api := newFakeAPI(t)
	file := writeFile(t, filepath.Join(t.TempDir(), "admin.token"), "file-token\n")
	a := &app{getenv: func(k string) string {
		if k == "GUST_URL" {
			return api.URL
		}
		return ""
	}, now: func() time.Time { return testNow }, tokenFile: file}
	root := newRoot(a)
	root.SetArgs([]string{"ls"})
	root.SetOut(io.Discard)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := api.last().Auth; got != "Bearer file-token" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestErrorText(t *testing.T) {
	api := newFakeAPI(t)
	r := runCLI(t, api.URL, "", "versions", "nope")
	if got := errorText(r.err); got != `error: function "nope" not found (not_found)` {
		t.Errorf("errorText = %q", got)
	}
	if r.stderr != "" {
		t.Errorf("stderr = %q: a runtime error must not print usage", r.stderr)
	}
	// Cobra prints usage to the writer set with SetOut, which is stderr
	// when the binary runs.
	r = runCLI(t, api.URL, "", "versions")
	if r.err == nil || !strings.Contains(r.stdout+r.stderr, "Usage:") {
		t.Errorf("wrong arguments: err %v, output %q (want usage)", r.err, r.stdout+r.stderr)
	}
}

// A process function's directory is zipped and uploaded.
func TestDeployZipsADirectory(t *testing.T) {
	api := newFakeAPI(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bootstrap"), "#!/bin/sh\n")
	before := api.count()
	r := runCLI(t, api.URL, "", "deploy", "hello", "--code", dir, "--runtime", "process")
	if r.err != nil {
		t.Fatalf("deploy of a directory: %v", r.err)
	}
	if api.count() != before+1 {
		t.Fatal("no upload")
	}
}

// A deploy that a newer concurrent deploy overtook says so.
func TestDeployNotLive(t *testing.T) {
	api := newFakeAPI(t)
	code := writeFile(t, filepath.Join(t.TempDir(), "bin", "handler"), "#!/bin/sh\n")
	r := runCLI(t, api.URL, "", "deploy", "late", "--runtime", "process", "--code", code)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := "deployed late version 3 (not live: version 4, deployed meanwhile, is)\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}
