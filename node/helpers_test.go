package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/httperr"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// testNode starts a real node on 127.0.0.1 with an embedded NATS in dir
// (a new temp dir if empty) and returns it with an admin client.
func testNode(t *testing.T, dir string, mod func(*Config)) (*Node, *client.Client) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := Config{
		DataDir:        dir,
		Listen:         "127.0.0.1:0",
		MemoryBudget:   4096,
		ReconcileEvery: 100 * time.Millisecond,
		WasmCacheDir:   wasmtest.CacheDir(t),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	tok, err := os.ReadFile(n.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	return n, client.New(n.URL(), strings.TrimSpace(string(tok)))
}

func deploy(t *testing.T, c *client.Client, name string, spec gust.Spec, code []byte) *gust.Version {
	t.Helper()
	// Generous: on a fresh machine the first deploy of a guest compiles it,
	// which under the race detector takes a while.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v, err := c.Deploy(ctx, name, spec, name+".wasm", bytes.NewReader(code))
	if err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
	return v
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, method, url string, body []byte) result {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, b}
}

// wantError checks the JSON error shape, its status and code, and the
// invocation id header.
func wantError(t *testing.T, r result, status int, code string) httperr.Body {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	var b httperr.Body
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error body is not JSON: %q", r.body)
	}
	if b.Code != code || b.Error == "" {
		t.Fatalf("error body = %+v, want code %q and a message", b, code)
	}
	return b
}

var defaultClient = http.DefaultClient

func newRequest(method, url, token string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}
