package wasm_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/kv"
	"github.com/gustfaas/gust/wasm"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// capsGuest exercises every capability; each path reports what happened
// as text, errors included, so the test reads what the guest saw.
const capsGuest = `package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/gustfaas/gust/sdk"
)

var store sdk.KV

func kind(err error) string {
	switch {
	case errors.Is(err, sdk.ErrDenied):
		return "denied"
	case errors.Is(err, sdk.ErrLimit):
		return "limit"
	case errors.Is(err, sdk.ErrNotFound):
		return "notfound"
	}
	return "error"
}

func init() {
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch r.URL.Path {
		case "/fetch":
			n, _ := strconv.Atoi(q.Get("n"))
			n = max(n, 1)
			for i := 0; i < n; i++ {
				req, _ := http.NewRequest("POST", q.Get("url"), strings.NewReader("ping"))
				req.Header.Set("X-Test", "yes")
				resp, err := sdk.Client.Do(req)
				if err != nil {
					fmt.Fprintf(w, "%d %s: %v", i, kind(err), err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				if i == n-1 {
					fmt.Fprintf(w, "%d %s", resp.StatusCode, b)
				}
			}
		case "/env":
			env := os.Environ()
			sort.Strings(env)
			fmt.Fprint(w, strings.Join(env, "\n"))
		case "/read":
			b, err := os.ReadFile(q.Get("path"))
			if err != nil {
				fmt.Fprintf(w, "error: %v", err)
				return
			}
			w.Write(b)
		case "/ls":
			es, err := os.ReadDir(q.Get("path"))
			if err != nil {
				fmt.Fprintf(w, "error: %v", err)
				return
			}
			for _, e := range es {
				fmt.Fprintln(w, e.Name())
			}
		case "/write":
			if err := os.WriteFile(q.Get("path"), []byte("x"), 0o644); err != nil {
				fmt.Fprintf(w, "error: %v", err)
				return
			}
			fmt.Fprint(w, "written")
		case "/kv/set":
			if err := store.Set(q.Get("k"), []byte(q.Get("v"))); err != nil {
				fmt.Fprintf(w, "%s: %v", kind(err), err)
				return
			}
			fmt.Fprint(w, "ok")
		case "/kv/get":
			v, err := store.Get(q.Get("k"))
			if err != nil {
				fmt.Fprintf(w, "%s: %v", kind(err), err)
				return
			}
			fmt.Fprintf(w, "value=%s", v)
		case "/kv/del":
			if err := store.Delete(q.Get("k")); err != nil {
				fmt.Fprintf(w, "%s: %v", kind(err), err)
				return
			}
			fmt.Fprint(w, "ok")
		case "/kv/list":
			keys, err := store.List(q.Get("p"))
			if err != nil {
				fmt.Fprintf(w, "%s: %v", kind(err), err)
				return
			}
			fmt.Fprint(w, strings.Join(keys, ","))
		}
	})
}

func main() {}
`

// capsEnv is what the capability tests share: an upstream HTTP server on
// 127.0.0.1 reached by the names api.test, other.test and
// a.wild.test, a JetStream for key-value stores, and a driver whose
// dialer maps those names.
type capsEnv struct {
	d        *wasm.Driver
	up       *httptest.Server
	port     string
	hits     atomic.Int32
	archives map[string][]byte
	kv       *kv.Store
	logs     *logRecorder
	code     []byte
}

func newCapsEnv(t testing.TB) *capsEnv {
	t.Helper()
	e := &capsEnv{archives: map[string][]byte{}, logs: &logRecorder{}}
	e.up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		switch r.URL.Path {
		case "/to-other":
			http.Redirect(w, r, "http://other.test:"+e.port+"/hello", http.StatusFound)
		case "/to-wild":
			http.Redirect(w, r, "http://a.wild.test:"+e.port+"/hello", http.StatusFound)
		case "/to-ip":
			http.Redirect(w, r, "http://127.0.0.1:"+e.port+"/hello", http.StatusFound)
		case "/big":
			w.Write(bytes.Repeat([]byte("x"), 2<<10))
		default:
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "hello from %s %s body=%s x-test=%s", r.Host, r.Method, body, r.Header.Get("X-Test"))
		}
	}))
	t.Cleanup(e.up.Close)
	u, _ := url.Parse(e.up.URL)
	_, e.port, _ = net.SplitHostPort(u.Host)

	b, err := broker.Start(context.Background(), broker.Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	e.kv = kv.New(b.JetStream(), 1)

	mapped := map[string]bool{"api.test": true, "other.test": true, "a.wild.test": true}
	e.d, err = wasm.New(wasm.Config{
		CacheDir: wasmtest.CacheDir(t),
		Logger:   slog.New(slog.DiscardHandler),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if !mapped[host] {
				return nil, fmt.Errorf("test resolver: no such host %s", host)
			}
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		MaxRequests:      3,
		MaxResponseBytes: 1 << 10,
		MaxValueBytes:    64,
		Archive: func(_ context.Context, digest string) ([]byte, error) {
			if b, ok := e.archives[digest]; ok {
				return b, nil
			}
			return nil, gust.Errorf(gust.ENOTFOUND, "no archive %s", digest)
		},
		KV: func(ctx context.Context, function string) (wasm.KV, error) { return e.kv.Open(ctx, function) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.d.Close(context.Background()) })
	e.code = wasmtest.Code(t, wasmtest.GoGuest(t, capsGuest))
	return e
}

// instance loads the guest as function name with spec and starts an
// instance.
func (e *capsEnv) instance(t testing.TB, name string, spec gust.Spec) gust.Instance {
	t.Helper()
	spec.Runtime = gust.RuntimeWasm
	if err := spec.WithDefaults().Validate(); err != nil {
		t.Fatalf("spec: %v", err)
	}
	m, err := e.d.Load(context.Background(), &gust.Version{Function: name, Number: 1, Spec: spec}, e.code, e.logs)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return start(t, m)
}

// call invokes path?query and returns the body.
func call(t testing.TB, inst gust.Instance, path, query string) string {
	t.Helper()
	req := get(path, query)
	req.Function = "fn"
	return string(invoke(t, inst, req).Body)
}

func fetchQuery(u string, n int) string {
	return url.Values{"url": {u}, "n": {fmt.Sprint(n)}}.Encode()
}

func TestOutboundHTTP(t *testing.T) {
	e := newCapsEnv(t)
	inst := e.instance(t, "fetcher", gust.Spec{AllowedHosts: []string{"api.test", "*.wild.test"}})
	base := "http://api.test:" + e.port

	tests := []struct {
		name, url string
		n         int
		want      string
	}{
		{"allowed host", base + "/hello", 1, "200 hello from api.test:" + e.port + " POST body=ping x-test=yes"},
		{"wildcard", "http://a.wild.test:" + e.port + "/hello", 1, "200 hello from a.wild.test"},
		{"redirect to an allowed host", base + "/to-wild", 1, "200 hello from a.wild.test"},
		{"unlisted host", "http://other.test:" + e.port + "/hello", 1, "0 denied: gust: outbound HTTP denied: host other.test is not in the function's allowedHosts"},
		{"IP literal", "http://127.0.0.1:" + e.port + "/hello", 1, "0 denied: gust: outbound HTTP denied: host 127.0.0.1 is an IP address"},
		{"IPv6 literal", "http://[::1]:" + e.port + "/hello", 1, "0 denied: gust: outbound HTTP denied: host ::1 is an IP address"},
		{"numeric host", "http://2130706433:" + e.port + "/hello", 1, "0 denied"},
		{"redirect to an unlisted host", base + "/to-other", 1, "0 denied: gust: outbound HTTP denied: redirect to http://other.test:" + e.port + "/hello refused"},
		{"redirect to an IP", base + "/to-ip", 1, "0 denied: gust: outbound HTTP denied: redirect to http://127.0.0.1:" + e.port + "/hello refused: host 127.0.0.1 is an IP address"},
		{"request limit", base + "/hello", 4, "3 limit: gust: outbound HTTP denied: over the limit of 3 requests per invocation"},
		{"response limit", base + "/big", 1, "0 limit: gust: outbound HTTP to api.test: response over the limit of 1024 bytes"},
		{"not http", "file:///etc/passwd", 1, "0 error: gust: http_request: scheme \"file\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, inst, "/fetch", fetchQuery(tt.url, tt.n))
			// http.Client puts "Post URL: " before a transport's error.
			kind, msg, _ := strings.Cut(tt.want, ": ")
			if !strings.HasPrefix(got, kind) || !strings.Contains(got, msg) {
				t.Fatalf("guest saw %q, want %q", got, tt.want)
			}
		})
	}
	// The limit is per invocation: the next one may send again.
	if got := call(t, inst, "/fetch", fetchQuery(base+"/hello", 3)); !strings.HasPrefix(got, "200 ") {
		t.Fatalf("after the limit, next invocation saw %q", got)
	}
	// Refusals are platform events in the function's log.
	if _, ok := e.logs.find("gust", "outbound request to http://other.test:"+e.port+"/hello denied"); !ok {
		t.Fatalf("no denial event in the log: %+v", e.logs.lines)
	}
}

func TestOutboundHTTPDeniedWithoutAllowedHosts(t *testing.T) {
	e := newCapsEnv(t)
	inst := e.instance(t, "closed", gust.Spec{})
	got := call(t, inst, "/fetch", fetchQuery("http://api.test:"+e.port+"/hello", 1))
	if want := "gust: outbound HTTP to api.test denied: the function declares no allowedHosts"; !strings.HasPrefix(got, "0 denied: ") || !strings.HasSuffix(got, want) {
		t.Fatalf("guest saw %q, want %q", got, want)
	}
	if n := e.hits.Load(); n != 0 {
		t.Fatalf("upstream got %d requests", n)
	}
}

func TestEnvironmentOnlyAsDeclared(t *testing.T) {
	t.Setenv("GUST_HOST_SECRET", "must-not-leak")
	e := newCapsEnv(t)
	inst := e.instance(t, "env", gust.Spec{Env: map[string]string{"A": "1", "B": "two"}})
	if got, want := call(t, inst, "/env", ""), "A=1\nB=two"; got != want {
		t.Fatalf("guest environment %q, want %q", got, want)
	}
	bare := e.instance(t, "bare", gust.Spec{})
	if got := call(t, bare, "/env", ""); got != "" {
		t.Fatalf("guest without env sees %q", got)
	}
}

// tarOf archives files (name → content; a name ending in / is a
// directory).
func tarOf(t testing.TB, files map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			h = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), "sha256:" + hex.EncodeToString(sum[:])
}

func TestFilesReadOnly(t *testing.T) {
	e := newCapsEnv(t)
	archive, digest := tarOf(t, map[string]string{"index.html": "<h1>hi</h1>", "data/": "", "data/rates.json": `{"eur":1}`})
	e.archives[digest] = archive
	spec := gust.Spec{Runtime: gust.RuntimeWasm, Files: &gust.Files{Digest: digest}}
	m, err := e.d.Load(context.Background(), &gust.Version{Function: "static", Number: 1, Spec: spec}, e.code, e.logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	inst := start(t, m)
	// The second instance starts from the first one's snapshot: the mount
	// must be there too.
	restored := start(t, m)
	if s, ok := m.(interface{ Snapshotted() bool }); !ok || !s.Snapshotted() {
		t.Fatal("the module was not snapshotted")
	}
	if got := call(t, restored, "/read", "path=/files/index.html"); got != "<h1>hi</h1>" {
		t.Fatalf("restored instance reads %q", got)
	}

	if got := call(t, inst, "/read", "path=/files/data/rates.json"); got != `{"eur":1}` {
		t.Fatalf("read = %q", got)
	}
	if got := call(t, inst, "/ls", "path=/files"); got != "data\nindex.html\n" {
		t.Fatalf("ls /files = %q", got)
	}
	for _, p := range []string{"/files/new.txt", "/files/index.html", "/tmp/x", "/x"} {
		if got := call(t, inst, "/write", "path="+p); !strings.HasPrefix(got, "error: ") {
			t.Fatalf("write %s: %q, want an error", p, got)
		}
	}
	if got := call(t, inst, "/read", "path=/files/index.html"); got != "<h1>hi</h1>" {
		t.Fatalf("after the writes, index.html = %q", got)
	}
	if got := call(t, inst, "/read", "path=/files/../../etc/passwd"); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("escape from /files: %q", got)
	}
}

func TestNoFilesystemWithoutFiles(t *testing.T) {
	e := newCapsEnv(t)
	inst := e.instance(t, "nofs", gust.Spec{})
	for _, p := range []string{"/", "/files", "."} {
		if got := call(t, inst, "/ls", "path="+p); !strings.HasPrefix(got, "error: ") {
			t.Fatalf("ls %s without files: %q, want an error", p, got)
		}
	}
	if got := call(t, inst, "/read", "path=/etc/passwd"); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("read /etc/passwd: %q", got)
	}
}

func TestFilesArchiveRefused(t *testing.T) {
	e := newCapsEnv(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
	tw.Close()
	sum := sha256.Sum256(buf.Bytes())
	digest := "sha256:" + hex.EncodeToString(sum[:])
	e.archives[digest] = buf.Bytes()
	spec := gust.Spec{Runtime: gust.RuntimeWasm, Files: &gust.Files{Digest: digest}}
	_, err := e.d.Load(context.Background(), &gust.Version{Function: "links", Number: 1, Spec: spec}, e.code, nil)
	wantCode(t, err, gust.EINVALID, `entry "link" is a symbolic link`)

	_, err = e.d.Load(context.Background(), &gust.Version{Function: "nodigest", Number: 1, Spec: gust.Spec{Runtime: gust.RuntimeWasm, Files: &gust.Files{Dir: "static"}}}, e.code, nil)
	wantCode(t, err, gust.EINVALID, "no archive was uploaded")
}

func TestKV(t *testing.T) {
	e := newCapsEnv(t)
	a := e.instance(t, "kv-a", gust.Spec{KV: true})
	b := e.instance(t, "kv-b", gust.Spec{KV: true})
	none := e.instance(t, "kv-none", gust.Spec{})

	steps := []struct {
		inst        gust.Instance
		path, query string
		want        string
	}{
		{a, "/kv/get", "k=count", "notfound: gust: kv get count: not found"},
		{a, "/kv/set", "k=count&v=1", "ok"},
		{a, "/kv/set", "k=user.ada&v=x", "ok"},
		{a, "/kv/set", "k=user.bob&v=y", "ok"},
		{a, "/kv/set", "k=users&v=z", "ok"},
		{a, "/kv/get", "k=count", "value=1"},
		{a, "/kv/get", "k=user.ada", "value=x"},
		{a, "/kv/list", "p=user.", "user.ada,user.bob"},
		{a, "/kv/list", "p=user", "user.ada,user.bob,users"},
		{a, "/kv/list", "p=", "count,user.ada,user.bob,users"},
		{a, "/kv/del", "k=user.ada", "ok"},
		{a, "/kv/del", "k=never-set", "ok"},
		{a, "/kv/list", "p=user.", "user.bob"},
		{a, "/kv/set", "k=bad key&v=1", "error: gust: kv set: invalid key \"bad key\""},
		{a, "/kv/set", "k=big&v=" + strings.Repeat("v", 65), "limit: gust: kv set: value of 65 bytes is over the limit of 64"},
		{a, "/kv/get", "k=big", "notfound: "},
		// Another function's store is its own.
		{b, "/kv/get", "k=count", "notfound: "},
		{b, "/kv/list", "p=", ""},
		{b, "/kv/set", "k=count&v=99", "ok"},
		{a, "/kv/get", "k=count", "value=1"},
		// Without kv: true, nothing.
		{none, "/kv/get", "k=count", "denied: gust: kv get denied: the function does not declare kv: true"},
		{none, "/kv/set", "k=count&v=1", "denied: "},
		{none, "/kv/list", "p=", "denied: "},
	}
	for i, s := range steps {
		if got := call(t, s.inst, s.path, s.query); !strings.HasPrefix(got, s.want) {
			t.Fatalf("step %d %s?%s: %q, want prefix %q", i, s.path, s.query, got, s.want)
		}
	}
	if _, ok := e.logs.find("gust", "kv get denied: the function does not declare kv: true"); !ok {
		t.Fatal("no denial event in the log")
	}
	// Removing a function's store empties it.
	if err := e.kv.Remove(context.Background(), "kv-a"); err != nil {
		t.Fatal(err)
	}
	fresh := e.instance(t, "kv-a", gust.Spec{KV: true})
	if got := call(t, fresh, "/kv/list", "p="); got != "" {
		t.Fatalf("after Remove, kv-a holds %q", got)
	}
}

// Imports of the host module are checked like WASI's: a name it does not
// define, or a wrong signature, fails the load.
func TestHostImportsChecked(t *testing.T) {
	e := newCapsEnv(t)
	for name, tc := range map[string]struct{ src, msg string }{
		"unknown": {`
__attribute__((import_module("gust"), import_name("open_socket")))
int open_socket(void);
int main(void) { return open_socket(); }
`, "module imports gust.open_socket, which gust's host module does not define"},
		"signature": {`
__attribute__((import_module("gust"), import_name("kv_get")))
int kv_get(int);
int main(void) { return kv_get(1); }
`, "module imports gust.kv_get with signature (i32) -> (i32), want (i32, i32) -> (i64)"},
	} {
		t.Run(name, func(t *testing.T) {
			code := wasmtest.Code(t, wasmtest.CGuest(t, tc.src))
			_, err := e.d.Load(context.Background(), &gust.Version{Function: "c", Number: 1, Spec: gust.Spec{Runtime: gust.RuntimeWasm, KV: true}}, code, nil)
			wantCode(t, err, gust.EINVALID, tc.msg)
		})
	}
}

// A WAGI command in C uses the same host functions: any language that
// targets WASI can.
func TestWAGIUsesKV(t *testing.T) {
	e := newCapsEnv(t)
	code := wasmtest.Code(t, wasmtest.CGuest(t, `
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

__attribute__((import_module("gust"), import_name("kv_get")))
int64_t kv_get(const char *key, int key_len);
__attribute__((import_module("gust"), import_name("kv_set")))
int64_t kv_set(const char *key, int key_len, const char *val, int val_len);
__attribute__((import_module("gust"), import_name("result_read")))
int result_read(char *buf, int cap);

int main(void) {
	char buf[32] = {0};
	int n = 0;
	int64_t r = kv_get("visits", 6);
	if ((r >> 32) == 0) {
		result_read(buf, sizeof buf - 1);
		n = atoi(buf);
	}
	n++;
	snprintf(buf, sizeof buf, "%d", n);
	r = kv_set("visits", 6, buf, strlen(buf));
	printf("Content-Type: text/plain\n\nvisits=%d code=%d\n", n, (int)(r >> 32));
	return 0;
}
`))
	spec := gust.Spec{Runtime: gust.RuntimeWasm, KV: true}
	m, err := e.d.Load(context.Background(), &gust.Version{Function: "counter-c", Number: 1, Spec: spec}, code, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	inst := start(t, m)
	for i := 1; i <= 3; i++ {
		if got, want := call(t, inst, "/", ""), fmt.Sprintf("visits=%d code=0\n", i); got != want {
			t.Fatalf("call %d: %q, want %q", i, got, want)
		}
	}
}

// What a capability call costs from inside a Go guest, through the SDK,
// against an embedded JetStream and an HTTP server on 127.0.0.1 (the
// "/kv/get" and "/fetch" handlers do one call each, plus the handler).
func BenchmarkCapabilities(b *testing.B) {
	e := newCapsEnv(b)
	inst := e.instance(b, "bench", gust.Spec{KV: true, AllowedHosts: []string{"api.test"}})
	call(b, inst, "/kv/set", "k=count&v=1")
	for _, bc := range []struct{ name, path, query string }{
		{"handler-only", "/kv/none", ""},
		{"kv-get", "/kv/get", "k=count"},
		{"kv-set", "/kv/set", "k=count&v=2"},
		{"http-get", "/fetch", fetchQuery("http://api.test:"+e.port+"/hello", 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := get(bc.path, bc.query)
			for b.Loop() {
				if _, err := inst.Invoke(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The lean API (no net/http) reaches the same capabilities.
func TestLeanCapabilities(t *testing.T) {
	e := newCapsEnv(t)
	code := wasmtest.Code(t, wasmtest.GoGuest(t, `package main

import (
	"fmt"

	"github.com/gustfaas/gust/sdk/lean"
)

var store lean.KV

func init() {
	lean.HandleFunc(func(r *lean.Request) *lean.Response {
		resp, err := lean.Fetch("PUT", r.QueryValue("url"), lean.Header{"X-Test": {"lean"}}, []byte("body"))
		if err != nil {
			return lean.Text(200, "fetch error: "+err.Error())
		}
		n := 0
		if v, err := store.Get("n"); err == nil {
			fmt.Sscan(string(v), &n)
		}
		n++
		if err := store.Set("n", []byte(fmt.Sprint(n))); err != nil {
			return lean.Text(200, "kv error: "+err.Error())
		}
		return lean.Text(200, fmt.Sprintf("%d %s n=%d", resp.Status, resp.Body, n))
	})
}

func main() {}
`))
	spec := gust.Spec{Runtime: gust.RuntimeWasm, KV: true, AllowedHosts: []string{"api.test"}}
	m, err := e.d.Load(context.Background(), &gust.Version{Function: "lean", Number: 1, Spec: spec}, code, e.logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	inst := start(t, m)
	for i := 1; i <= 2; i++ {
		got := call(t, inst, "/", "url="+url.QueryEscape("http://api.test:"+e.port+"/x"))
		if want := fmt.Sprintf("200 hello from api.test:%s PUT body=body x-test=lean n=%d", e.port, i); got != want {
			t.Fatalf("call %d: %q, want %q", i, got, want)
		}
	}
	if got := call(t, inst, "/", "url="+url.QueryEscape("http://other.test:"+e.port+"/x")); !strings.HasPrefix(got, "fetch error: gust: outbound HTTP denied: host other.test") {
		t.Fatalf("unlisted host: %q", got)
	}
}
