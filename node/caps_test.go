package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// upstream is an API on 127.0.0.1 that functions reach as api.test, through
// the node's wasm dialer: names are checked, then mapped.
func upstream(t *testing.T) (port string, hits *atomic.Int32, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	t.Helper()
	hits = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"host":%q}`, r.URL.Path, r.Host)
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, p, err := net.SplitHostPort(addr)
		if err != nil || host != "api.test" {
			return nil, fmt.Errorf("test resolver: no such host %s", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", p))
	}
	return port, hits, dial
}

// deployFetch deploys examples/fetch from its manifest as `gust deploy -f`
// does (its files directory archived and uploaded), pointed at api.test.
func deployFetch(t *testing.T, c *client.Client, port string) *gust.Version {
	t.Helper()
	m, err := client.LoadManifest(filepath.Join(wasmtest.Root(), "examples", "fetch", "gust.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.KV || m.Files == nil || len(m.AllowedHosts) != 1 {
		t.Fatalf("manifest declares kv %v, files %+v, hosts %v", m.KV, m.Files, m.AllowedHosts)
	}
	m.AllowedHosts = []string{"api.test"}
	m.Env = map[string]string{"UPSTREAM": "http://api.test:" + port}
	files, err := client.TarDir(m.Files.Dir)
	if err != nil {
		t.Fatal(err)
	}
	code := wasmtest.Code(t, wasmtest.GoGuest(t, exampleSource(t, "fetch")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v, err := c.DeployWithFiles(ctx, m.Name, m.Spec, "fetch.wasm", bytes.NewReader(code), files)
	if err != nil {
		t.Fatalf("deploy fetch: %v", err)
	}
	return v
}

// examples/fetch: outbound HTTP to its allowed host, responses cached in
// its key-value store, a page from its files; the store goes with `gust rm`.
func TestExampleFetch(t *testing.T) {
	port, hits, dial := upstream(t)
	n, c := testNode(t, "", func(cfg *Config) { cfg.WasmDial = dial })
	v := deployFetch(t, c, port)
	if v.Spec.Files == nil || !strings.HasPrefix(v.Spec.Files.Digest, "sha256:") || v.Spec.Files.Dir != "" {
		t.Fatalf("stored files = %+v, want a digest and no local path", v.Spec.Files)
	}
	base := n.URL() + "/fn/fetch"

	r := do(t, "GET", base+"/", nil)
	if r.status != 200 || !strings.Contains(string(r.body), "<h1>fetch: a caching proxy on gust</h1>") {
		t.Fatalf("GET / = %d %q", r.status, r.body)
	}
	for i, want := range []string{"miss", "hit", "hit"} {
		r := do(t, "GET", base+"/api/repos/gustfaas/gust", nil)
		if r.status != 200 || r.header.Get("X-Cache") != want {
			t.Fatalf("call %d: %d X-Cache %q %s, want %s", i, r.status, r.header.Get("X-Cache"), r.body, want)
		}
		if want := `{"path":"/repos/gustfaas/gust","host":"api.test:` + port + `"}`; string(r.body) != want {
			t.Fatalf("body %s, want %s", r.body, want)
		}
	}
	if h := hits.Load(); h != 1 {
		t.Fatalf("upstream saw %d requests, want 1 (then the cache)", h)
	}
	var st struct {
		Hits, Misses int
		Cached       []string
	}
	r = do(t, "GET", base+"/stats", nil)
	if err := json.Unmarshal(r.body, &st); err != nil || st.Hits != 2 || st.Misses != 1 || len(st.Cached) != 1 || st.Cached[0] != "repos/gustfaas/gust" {
		t.Fatalf("stats %s (%v)", r.body, err)
	}

	// gust rm removes the store: a new function of the same name starts empty.
	if err := c.Delete(context.Background(), "fetch"); err != nil {
		t.Fatal(err)
	}
	deployFetch(t, c, port)
	r = do(t, "GET", base+"/stats", nil)
	if string(r.body) != `{"hits":0,"misses":0,"cached":[]}`+"\n" {
		t.Fatalf("stats after rm and deploy: %s", r.body)
	}
}

// Files declared without an archive, or an archive without files, fail
// the deploy; capabilities on a process runtime too.
func TestDeployCapabilityErrors(t *testing.T) {
	n, c := testNode(t, "", nil)
	code := wasmtest.Code(t, wasmtest.Hello(t))
	ctx := context.Background()
	wasmSpec := gust.Spec{Runtime: gust.RuntimeWasm}

	withDir := wasmSpec
	withDir.Files = &gust.Files{Dir: "static"}
	_, err := c.Deploy(ctx, "nofiles", withDir, "hello.wasm", bytes.NewReader(code))
	wantErrCode(t, err, gust.EINVALID, `no "files" part`)

	_, err = c.DeployWithFiles(ctx, "stray", wasmSpec, "hello.wasm", bytes.NewReader(code), []byte("x"))
	wantErrCode(t, err, gust.EINVALID, "declares no files")

	unknown := wasmSpec
	unknown.Files = &gust.Files{Digest: "sha256:" + strings.Repeat("0", 64)}
	_, err = c.Deploy(ctx, "unknown", unknown, "hello.wasm", bytes.NewReader(code))
	wantErrCode(t, err, gust.EINVALID, "no archive with digest")

	ip := wasmSpec
	ip.AllowedHosts = []string{"10.0.0.1"}
	_, err = c.Deploy(ctx, "ip", ip, "hello.wasm", bytes.NewReader(code))
	wantErrCode(t, err, gust.EINVALID, "IP addresses are not allowed")

	badTar := []byte("not a tar archive, just bytes that are long enough to read")
	_, err = c.DeployWithFiles(ctx, "badtar", withDir, "hello.wasm", bytes.NewReader(code), badTar)
	wantErrCode(t, err, gust.EINVALID, "invalid files archive")
	// Bad input stores nothing: not the archive either.
	sum := sha256.Sum256(badTar)
	_, err = n.Registry().Code(ctx, "sha256:"+hex.EncodeToString(sum[:]))
	wantErrCode(t, err, gust.ENOTFOUND, "no code with digest")
}

func wantErrCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	if err == nil || gust.ErrorCode(err) != code || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %v (code %s), want %s containing %q", err, gust.ErrorCode(err), code, msg)
	}
}
