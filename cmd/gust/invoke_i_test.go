package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gust invoke reaches an https server the way every other verb does:
// trusting --tls-ca or GUST_TLS_CA, and sending no admin token.
func TestInvokeTrustsTLSCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fn/hello" || r.Header.Get("Authorization") != "" {
			http.Error(w, "unexpected "+r.URL.Path+" "+r.Header.Get("Authorization"), http.StatusTeapot)
			return
		}
		w.Write([]byte("hi over tls"))
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(env map[string]string, args ...string) (string, error) {
		a := &app{getenv: func(k string) string { return env[k] }, now: func() time.Time { return testNow },
			tokenFile: filepath.Join(t.TempDir(), "admin.token")}
		root := newRoot(a)
		var out, errb bytes.Buffer
		root.SetArgs(append([]string{"--url", srv.URL, "--token", testToken}, args...))
		root.SetOut(&out)
		root.SetErr(&errb)
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	if out, err := run(nil, "--tls-ca", ca, "invoke", "hello"); err != nil || out != "hi over tls" {
		t.Fatalf("with --tls-ca: %q, %v", out, err)
	}
	if out, err := run(map[string]string{"GUST_TLS_CA": ca}, "invoke", "hello"); err != nil || out != "hi over tls" {
		t.Fatalf("with GUST_TLS_CA: %q, %v", out, err)
	}
	// Without the CA the server is not trusted, as for any other verb.
	if _, err := run(nil, "invoke", "hello"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a CA: %v, want a certificate error", err)
	}
	if _, err := run(nil, "--tls-ca", filepath.Join(t.TempDir(), "none.pem"), "invoke", "hello"); err == nil || !strings.Contains(err.Error(), "--tls-ca") {
		t.Fatalf("a missing CA file: %v", err)
	}
}
