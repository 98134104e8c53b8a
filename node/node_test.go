package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

func TestServeAndAuth(t *testing.T) {
	n, _ := testNode(t, "", nil)
	if r := do(t, "GET", n.URL()+"/healthz", nil); r.status != 200 {
		t.Fatalf("healthz = %d", r.status)
	}
	st, err := os.Stat(n.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode = %v, want 0600", st.Mode().Perm())
	}
	for _, path := range []string{"/v1/functions", "/v1/status", "/v1/functions/x/versions", "/v1/nope"} {
		wantError(t, do(t, "GET", n.URL()+path, nil), 401, gust.EUNAUTHORIZED)
	}
	if r := do(t, "GET", n.URL()+"/metrics", nil); r.status != 200 || !bytes.Contains(r.body, []byte("go_goroutines")) {
		t.Fatalf("metrics = %d", r.status)
	}
}

func TestDeployInvokeVersionsRollbackRestart(t *testing.T) {
	dir := t.TempDir()
	n, c := testNode(t, dir, nil)
	ctx := context.Background()
	hello := wasmtest.Code(t, wasmtest.Hello(t))

	v1 := deploy(t, c, "hello", gust.Spec{Runtime: "wasm", MemoryMB: 64, Env: map[string]string{"GREETING": "one"}}, hello)
	v2 := deploy(t, c, "hello", gust.Spec{Runtime: "wasm", Env: map[string]string{"GREETING": "two"}}, hello)
	if v1.Number != 1 || v2.Number != 2 || v1.Shape != "reactor" {
		t.Fatalf("versions %d, %d (shape %q)", v1.Number, v2.Number, v1.Shape)
	}
	if v1.CodeDigest != v2.CodeDigest || !strings.HasPrefix(v1.CodeDigest, "sha256:") {
		t.Fatalf("digests %q %q", v1.CodeDigest, v2.CodeDigest)
	}
	r := do(t, "GET", n.URL()+"/fn/hello?name=gust", nil)
	if r.status != 200 || string(r.body) != "Hello, gust!\n" {
		t.Fatalf("invoke = %d %q", r.status, r.body)
	}
	if len(r.header.Get("X-Gust-Invocation-Id")) != 32 {
		t.Fatalf("no invocation id: %v", r.header)
	}
	env := do(t, "GET", n.URL()+"/fn/hello/env", nil)
	if !bytes.Contains(env.body, []byte("GREETING=two")) {
		t.Fatalf("live is not version 2: env %q", env.body)
	}
	// Only the declared env: nothing of the host's.
	if bytes.Contains(env.body, []byte("PATH=")) || bytes.Contains(env.body, []byte("HOME=")) {
		t.Fatalf("host environment leaked into the guest: %q", env.body)
	}
	if env := do(t, "GET", n.URL()+"/fn/hello@1/env", nil); !bytes.Contains(env.body, []byte("GREETING=one")) {
		t.Fatalf("@1 is not version 1: %q", env.body)
	}
	if _, err := c.Rollback(ctx, "hello", 1); err != nil {
		t.Fatal(err)
	}
	if env := do(t, "GET", n.URL()+"/fn/hello/env", nil); !bytes.Contains(env.body, []byte("GREETING=one")) {
		t.Fatalf("rollback did not make version 1 live: %q", env.body)
	}
	vs, err := c.Versions(ctx, "hello")
	if err != nil || len(vs) != 2 {
		t.Fatalf("versions = %v, %v", vs, err)
	}
	if vs[0].Spec.MemoryMB != 64 || vs[1].Spec.MemoryMB != gust.DefaultMemoryMB {
		t.Fatalf("specs not stored with defaults: %+v %+v", vs[0].Spec, vs[1].Spec)
	}
	wantError(t, do(t, "GET", n.URL()+"/fn/hello@7", nil), 404, gust.ENOTFOUND)
	wantError(t, do(t, "GET", n.URL()+"/fn/hello@canary", nil), 404, gust.ENOTFOUND)

	// Restart on the same data dir: everything is still there.
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	n.Close(closeCtx)
	cancel()
	n2, c2 := testNode(t, dir, nil)
	fn, err := c2.Function(ctx, "hello")
	if err != nil || fn.Live != 1 || fn.LatestVersion != 2 {
		t.Fatalf("after restart: %+v, %v", fn, err)
	}
	if env := do(t, "GET", n2.URL()+"/fn/hello/env", nil); env.status != 200 || !bytes.Contains(env.body, []byte("GREETING=one")) {
		t.Fatalf("after restart: %d %q", env.status, env.body)
	}
	if err := c2.Delete(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	wantError(t, do(t, "GET", n2.URL()+"/fn/hello", nil), 404, gust.ENOTFOUND)
	if fns, err := c2.Functions(ctx); err != nil || len(fns) != 0 {
		t.Fatalf("after rm: %v %v", fns, err)
	}
}

// By default compiled modules are cached under the data dir, so a restart
// loads them instead of compiling again. (Other tests share one cache
// outside their data dirs to save compile time.)
func TestCompileCacheInDataDir(t *testing.T) {
	dir := t.TempDir()
	n, c := testNode(t, dir, func(cfg *Config) { cfg.WasmCacheDir = "" })
	deploy(t, c, "hello-c", gust.Spec{}, wasmtest.Code(t, wasmtest.HelloC(t)))
	if r := do(t, "GET", n.URL()+"/fn/hello-c", nil); r.status != 200 {
		t.Fatalf("invoke = %d", r.status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	n.Close(ctx)
	cancel()
	entries, _ := os.ReadDir(filepath.Join(dir, "cache", "wasm"))
	if len(entries) == 0 {
		t.Fatal("compiled-module cache is empty after a deploy")
	}
	n2, _ := testNode(t, dir, func(cfg *Config) { cfg.WasmCacheDir = "" })
	if r := do(t, "GET", n2.URL()+"/fn/hello-c", nil); r.status != 200 {
		t.Fatalf("after restart = %d", r.status)
	}
}

func TestExternalNATS(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	dir := t.TempDir()
	n, c := testNode(t, dir, func(cfg *Config) { cfg.NATSURL = ns.ClientURL() })
	deploy(t, c, "hello", gust.Spec{}, wasmtest.Code(t, wasmtest.Hello(t)))
	if r := do(t, "GET", n.URL()+"/fn/hello", nil); r.status != 200 {
		t.Fatalf("invoke = %d %s", r.status, r.body)
	}
	// The state is in the external server, not in the data dir.
	if _, err := os.Stat(filepath.Join(dir, "nats")); err == nil {
		t.Fatal("an embedded store was created although --nats was given")
	}
	if ns.JetStreamEnabled() {
		info, err := ns.Jsz(&server.JSzOptions{})
		if err != nil || info.Streams == 0 {
			t.Fatalf("external server holds no streams: %+v %v", info, err)
		}
	}
}

func TestWagiAndThumbnail(t *testing.T) {
	n, c := testNode(t, "", nil)
	v := deploy(t, c, "hello-c", gust.Spec{}, wasmtest.Code(t, wasmtest.HelloC(t)))
	if v.Shape != "wagi" {
		t.Fatalf("shape = %q", v.Shape)
	}
	r := do(t, "POST", n.URL()+"/fn/hello-c/a/b?x=1&y=2", []byte("twelve bytes"))
	if r.status != 200 {
		t.Fatalf("hello-c = %d %s", r.status, r.body)
	}
	for _, want := range []string{"method=POST", "path=/a/b", "query=x=1&y=2", "body=12"} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Fatalf("hello-c answer %q lacks %q", r.body, want)
		}
	}
	if r := do(t, "GET", n.URL()+"/fn/hello-c?status=404", nil); r.status != 404 {
		t.Fatalf("status=404 gave %d", r.status)
	}

	deploy(t, c, "thumbnail", gust.Spec{}, wasmtest.Code(t, wasmtest.Thumbnail(t)))
	img := image.NewRGBA(image.Rect(0, 0, 400, 200))
	for x := 0; x < 400; x++ {
		for y := 0; y < 200; y++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 100, 255})
		}
	}
	var in bytes.Buffer
	if err := png.Encode(&in, img); err != nil {
		t.Fatal(err)
	}
	r = do(t, "POST", n.URL()+"/fn/thumbnail?w=100", in.Bytes())
	if r.status != 200 || r.header.Get("Content-Type") != "image/png" {
		t.Fatalf("thumbnail = %d %s %q", r.status, r.header.Get("Content-Type"), r.body[:min(len(r.body), 200)])
	}
	out, err := png.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if b := out.Bounds(); b.Dx() != 100 || b.Dy() != 50 {
		t.Fatalf("thumbnail is %v, want 100x50", b)
	}
	if r := do(t, "POST", n.URL()+"/fn/thumbnail", []byte("not an image")); r.status != 400 {
		t.Fatalf("non-image gave %d", r.status)
	}
}

const loopGuest = `package main

import (
	"net/http"
	"github.com/gustfaas/gust/sdk"
)

func init() {
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("loop") != "" {
			for {
			}
		}
		if r.URL.Query().Get("hog") != "" {
			var keep [][]byte
			for {
				keep = append(keep, make([]byte, 1<<20))
				keep[len(keep)-1][0] = 1
			}
		}
		if r.URL.Query().Get("panic") != "" {
			panic("on purpose")
		}
		w.Write([]byte("fine"))
	})
}

func main() {}
`

func TestLimits(t *testing.T) {
	n, c := testNode(t, "", nil)
	code := wasmtest.Code(t, wasmtest.GoGuest(t, loopGuest))
	deploy(t, c, "limits", gust.Spec{Timeout: gust.Duration(300 * time.Millisecond), MemoryMB: 32, MaxBodyBytes: 1024}, code)
	deploy(t, c, "hello", gust.Spec{}, wasmtest.Code(t, wasmtest.Hello(t)))

	if r := do(t, "GET", n.URL()+"/fn/limits", nil); r.status != 200 || string(r.body) != "fine" {
		t.Fatalf("limits = %d %q", r.status, r.body)
	}
	start := time.Now()
	r := do(t, "GET", n.URL()+"/fn/limits?loop=1", nil)
	wantError(t, r, 504, gust.ETIMEOUT)
	if r.header.Get("X-Gust-Invocation-Id") == "" {
		t.Fatal("504 lacks the invocation id")
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("endless loop was not stopped")
	}
	deploy(t, c, "hog", gust.Spec{MemoryMB: 32}, code)
	wantError(t, do(t, "GET", n.URL()+"/fn/hog?hog=1", nil), 502, gust.EOOM)
	wantError(t, do(t, "GET", n.URL()+"/fn/limits?panic=1", nil), 502, gust.EFUNCTION)
	wantError(t, do(t, "POST", n.URL()+"/fn/limits", bytes.Repeat([]byte("x"), 2048)), 413, gust.ETOOLARGE)
	// Each failure discarded only its instance: both functions still serve.
	if r := do(t, "GET", n.URL()+"/fn/limits", nil); r.status != 200 {
		t.Fatalf("after failures: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", n.URL()+"/fn/hello", nil); r.status != 200 {
		t.Fatalf("hello after failures: %d %s", r.status, r.body)
	}
	wantError(t, do(t, "GET", n.URL()+"/fn/unknown", nil), 404, gust.ENOTFOUND)
	wantError(t, do(t, "GET", n.URL()+"/fn/Bad_Name", nil), 404, gust.ENOTFOUND)
}

func TestBadDeploysStoreNothing(t *testing.T) {
	n, c := testNode(t, "", func(cfg *Config) { cfg.MaxCodeBytes = 8 << 20 })
	ctx := context.Background()
	deploy(t, c, "keep", gust.Spec{}, wasmtest.Code(t, wasmtest.HelloC(t)))
	noExports := []byte("\x00asm\x01\x00\x00\x00")
	cases := []struct {
		name, fn string
		spec     gust.Spec
		code     []byte
		want     string
	}{
		{"not wasm", "bad", gust.Spec{}, []byte("#!/bin/sh\necho hi\n"), "WebAssembly"},
		{"no exports", "bad", gust.Spec{}, noExports, "export"},
		{"bad name", "Bad_Name", gust.Spec{}, wasmtest.Code(t, wasmtest.HelloC(t)), "name"},
		{"too large", "bad", gust.Spec{}, bytes.Repeat([]byte{0}, 9<<20), "limit"},
		{"bad memory", "bad", gust.Spec{MemoryMB: 999999}, wasmtest.Code(t, wasmtest.HelloC(t)), "memory"},
		{"bad runtime", "bad", gust.Spec{Runtime: "cobol"}, wasmtest.Code(t, wasmtest.HelloC(t)), "runtime"},
		{"new version of keep", "keep", gust.Spec{}, []byte("garbage"), "WebAssembly"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Deploy(ctx, tc.fn, tc.spec, "code.wasm", bytes.NewReader(tc.code))
			if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("deploy error = %v (code %q), want invalid naming %q", err, gust.ErrorCode(err), tc.want)
			}
		})
	}
	fns, err := c.Functions(ctx)
	if err != nil || len(fns) != 1 || fns[0].Name != "keep" || fns[0].LatestVersion != 1 {
		t.Fatalf("functions after bad deploys: %+v %v", fns, err)
	}
	if r := do(t, "GET", n.URL()+"/fn/keep", nil); r.status != 200 {
		t.Fatalf("keep = %d", r.status)
	}
}

// Concurrent requests never share an instance: the wasm driver refuses a
// second concurrent call on one instance (a 500), and each instance's call
// counter must count up without gaps or repeats.
func TestConcurrentRequestsNeverShareAnInstance(t *testing.T) {
	n, c := testNode(t, "", nil)
	const slow = `package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
	"github.com/gustfaas/gust/sdk"
)

var id string
var calls, inside int

func init() {
	newID := func() {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	newID()
	sdk.OnRestore(newID)
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		inside++
		calls++
		w.Header().Set("X-Instance-Id", id)
		w.Header().Set("X-Instance-Calls", strconv.Itoa(calls))
		w.Header().Set("X-Inside", strconv.Itoa(inside))
		time.Sleep(5 * time.Millisecond)
		inside--
	})
}

func main() {}
`
	deploy(t, c, "slow", gust.Spec{MaxConcurrency: 8, QueueTimeout: gust.Duration(30 * time.Second)}, wasmtest.Code(t, wasmtest.GoGuest(t, slow)))
	var mu sync.Mutex
	seen := map[string]map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				resp, err := http.Get(n.URL() + "/fn/slow")
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("X-Inside") != "1" {
					errs <- fmt.Errorf("status %d inside %q", resp.StatusCode, resp.Header.Get("X-Inside"))
					return
				}
				mu.Lock()
				id, calls := resp.Header.Get("X-Instance-Id"), resp.Header.Get("X-Instance-Calls")
				if seen[id] == nil {
					seen[id] = map[string]bool{}
				}
				if seen[id][calls] {
					errs <- fmt.Errorf("instance %s call %s seen twice", id, calls)
				}
				seen[id][calls] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) < 2 || len(seen) > 8 {
		t.Fatalf("%d instances served 16 concurrent clients with max concurrency 8", len(seen))
	}
	total := 0
	for _, calls := range seen {
		total += len(calls)
	}
	if total != 160 {
		t.Fatalf("%d distinct (instance, call) pairs, want 160", total)
	}
}

func TestIdleInstancesAreReaped(t *testing.T) {
	n, c := testNode(t, "", nil)
	deploy(t, c, "hello", gust.Spec{IdleTimeout: gust.Duration(200 * time.Millisecond)}, wasmtest.Code(t, wasmtest.Hello(t)))
	if r := do(t, "GET", n.URL()+"/fn/hello", nil); r.status != 200 {
		t.Fatal(r.status)
	}
	instances := func() int {
		total := 0
		for _, s := range n.Invoker().Stats() {
			total += s.Idle + s.Busy + s.Starting
		}
		return total
	}
	if instances() != 1 {
		t.Fatalf("instances after a call = %d, want 1", instances())
	}
	deadline := time.Now().Add(10 * time.Second)
	for instances() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle instance not reaped: %+v", n.Invoker().Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Scale from zero again.
	if r := do(t, "GET", n.URL()+"/fn/hello", nil); r.status != 200 || r.header.Get("X-Instance-Calls") != "1" {
		t.Fatalf("after reaping: %d calls %q", r.status, r.header.Get("X-Instance-Calls"))
	}
}

// Every admin route answers 401 without a token or with a bad one, and
// 403 with a token of the wrong scope or for another function.
func TestEveryAdminRouteChecksScope(t *testing.T) {
	n, c := testNode(t, "", nil)
	ctx := context.Background()
	routes := n.API().Routes()
	if len(routes) < 14 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	tokens := map[string]string{}
	for _, spec := range []struct {
		key, scope string
		fns        []string
	}{
		{"read", "read", nil}, {"deploy", "deploy", nil}, {"invoke", "invoke", nil},
		{"admin-other-fn", "admin", []string{"other"}}, {"deploy-other-fn", "deploy", []string{"other"}},
	} {
		secret, _, err := c.CreateToken(ctx, spec.scope, spec.fns, 0)
		if err != nil {
			t.Fatal(err)
		}
		tokens[spec.key] = secret
	}
	expired, _, err := c.CreateToken(ctx, "admin", nil, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	revoked, tok, err := c.CreateToken(ctx, "admin", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)

	status := func(method, path, auth string) int {
		req, _ := http.NewRequest(method, n.URL()+path, strings.NewReader("{}"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fill := strings.NewReplacer("{name}", "hello", "{n}", "1", "{alias}", "live", "{id}", "abc")
	for route, scope := range routes {
		method, path, _ := strings.Cut(route, " ")
		path = fill.Replace(path)
		for _, bad := range []string{"", "Bearer wrong", "Basic abc", "Bearer " + expired, "Bearer " + revoked, "Bearer gust_abc_def"} {
			if got := status(method, path, bad); got != 401 {
				t.Errorf("%s %s with %q: status %d, want 401", method, path, bad, got)
			}
		}
		var forbidden []string
		switch scope {
		case "read":
			forbidden = []string{"invoke"}
		case "deploy":
			forbidden = []string{"invoke", "read"}
		case "admin":
			forbidden = []string{"invoke", "read", "deploy"}
		}
		if strings.Contains(route, "{name}") || scope != "admin" {
			// A token for another function may not act on this one, nor
			// on routes about no one function.
			forbidden = append(forbidden, "admin-other-fn")
		}
		for _, key := range forbidden {
			if got := status(method, path, "Bearer "+tokens[key]); got != 403 {
				t.Errorf("%s %s (scope %s) with a %s token: status %d, want 403", method, path, scope, key, got)
			}
		}
	}
	// A function-limited deploy token works on its own function.
	limited := client.New(n.URL(), tokens["deploy-other-fn"])
	if _, err := limited.Deploy(ctx, "other", gust.Spec{}, "x.wasm", bytes.NewReader(wasmtest.Code(t, wasmtest.HelloC(t)))); err != nil {
		t.Fatalf("deploy with a token for that function: %v", err)
	}
	if _, err := limited.Deploy(ctx, "hello", gust.Spec{}, "x.wasm", bytes.NewReader(wasmtest.Code(t, wasmtest.HelloC(t)))); gust.ErrorCode(err) != gust.EFORBIDDEN {
		t.Fatalf("deploy of another function: %v", err)
	}
	toks, err := c.Tokens(ctx) // the six made here and the node's published bootstrap token
	if err != nil || len(toks) != 7 {
		t.Fatalf("tokens: %d %v", len(toks), err)
	}
}

func TestTLSSelfSigned(t *testing.T) {
	dir := t.TempDir()
	n, _ := testNode(t, dir, func(cfg *Config) { cfg.TLSSelfSigned = true })
	if !strings.HasPrefix(n.URL(), "https://") {
		t.Fatalf("URL = %s", n.URL())
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, SelfSignedCert))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "tls", "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("bad certificate PEM")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(n.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("healthz over TLS: %d %v", resp.StatusCode, resp.TLS)
	}
	// Plain HTTP to the TLS port is refused, not served.
	if r, err := http.Get("http" + strings.TrimPrefix(n.URL(), "https") + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
}
