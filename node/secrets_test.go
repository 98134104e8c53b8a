package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// lockedBuffer collects every log line of a node.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// secretGuest proves it has the secret without printing it: it answers
// whether DB_PASSWORD is set and the SHA-256 of its value.
const secretGuest = `package main

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"github.com/gustfaas/gust/sdk"
)

func init() {
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv("DB_PASSWORD")
		fmt.Fprintf(w, "present=%v sha256=%x", ok, sha256.Sum256([]byte(v)))
	})
}

func main() {}
`

func TestSecretsAreEncryptedAndNeverLeak(t *testing.T) {
	dir := t.TempDir()
	var logBuf lockedBuffer
	const plaintext = "hunter2-correct-horse-battery-staple"
	n, c := testNode(t, dir, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	if _, err := c.SetSecret(ctx, "DB_PASSWORD", []byte(plaintext)); err != nil {
		t.Fatal(err)
	}
	code := wasmtest.Code(t, wasmtest.GoGuest(t, secretGuest))
	if _, err := c.Deploy(ctx, "db", gust.Spec{Secrets: []string{"MISSING"}}, "db.wasm", bytes.NewReader(code)); gust.ErrorCode(err) != gust.EINVALID {
		t.Fatalf("deploy naming a missing secret: %v", err)
	}
	deploy(t, c, "db", gust.Spec{Secrets: []string{"DB_PASSWORD"}}, code)
	deploy(t, c, "nosecret", gust.Spec{}, code)
	want := fmt.Sprintf("present=true sha256=%x", sha256.Sum256([]byte(plaintext)))
	if r := do(t, "GET", n.URL()+"/fn/db", nil); string(r.body) != want {
		t.Fatalf("function with the secret: %q, want %q", r.body, want)
	}
	if r := do(t, "GET", n.URL()+"/fn/nosecret", nil); !strings.HasPrefix(string(r.body), "present=false") {
		t.Fatalf("function without the secret: %q", r.body)
	}
	keyID, n1, err := c.RotateSecretKey(ctx)
	if err != nil || n1 != 1 {
		t.Fatalf("rotate: %v %d", err, n1)
	}
	list, err := c.Secrets(ctx)
	if err != nil || len(list) != 1 || list[0].KeyID != keyID {
		t.Fatalf("secrets after rotation: %+v %v", list, err)
	}
	// A new version still gets the value, opened with the new key.
	deploy(t, c, "db", gust.Spec{Secrets: []string{"DB_PASSWORD"}, Env: map[string]string{"V": "2"}}, code)
	if r := do(t, "GET", n.URL()+"/fn/db", nil); string(r.body) != want {
		t.Fatalf("after rotation: %q", r.body)
	}
	// Nothing the API answers holds the value.
	for _, path := range []string{"/v1/secrets", "/v1/functions/db", "/v1/functions/db/versions", "/v1/status", "/v1/invocations?function=db"} {
		r := authed(t, n, path)
		if strings.Contains(string(r), plaintext) {
			t.Fatalf("%s leaks the secret", path)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = n.Logs().Flush(fctx)
	closeCtx, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	n.Close(closeCtx)
	cancel2()
	if strings.Contains(logBuf.String(), plaintext) || strings.Contains(logBuf.String(), "hunter2") {
		t.Fatal("a log line contains the secret")
	}
	// The data dir, and the compiled-module and snapshot cache these tests
	// share outside it.
	for _, root := range []string{dir, wasmtest.CacheDir(t)} {
		scanForPlaintext(t, root, plaintext)
	}
	if st, err := os.Stat(filepath.Join(dir, "master.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v", st, err)
	}
}

func scanForPlaintext(t *testing.T, root, plaintext string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(plaintext)) || bytes.Contains(b, []byte("hunter2")) {
			t.Errorf("%s holds the secret in plaintext", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func authed(t *testing.T, n *Node, path string) []byte {
	t.Helper()
	tok, err := os.ReadFile(n.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := newRequest("GET", n.URL()+path, strings.TrimSpace(string(tok)))
	resp, err := defaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b.String())
	}
	return b.Bytes()
}
