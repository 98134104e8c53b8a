package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/node"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// gust secret rm against a real node: a secret the live version uses is
// refused, naming it and --force; with --force it goes and the CLI warns
// which versions will fail.
func TestSecretRmInUse(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		DataDir: dir, Listen: "127.0.0.1:0", MemoryBudget: 512,
		WasmCacheDir: wasmtest.CacheDir(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	cli := func(stdin string, args ...string) result {
		a := &app{getenv: func(string) string { return "" }, now: time.Now, tokenFile: filepath.Join(dir, "admin.token")}
		root := newRoot(a)
		var out, errb bytes.Buffer
		root.SetArgs(append([]string{"--url", n.URL(), "--token", strings.TrimSpace(string(tok))}, args...))
		root.SetIn(strings.NewReader(stdin))
		root.SetOut(&out)
		root.SetErr(&errb)
		err := root.ExecuteContext(ctx)
		return result{out.String(), errb.String(), err}
	}
	if r := cli("s3cret\n", "secret", "set", "API_KEY"); r.err != nil {
		t.Fatal(r.err)
	}
	code := filepath.Join(dir, "hello.wasm")
	if err := os.WriteFile(code, wasmtest.Code(t, wasmtest.HelloC(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := cli("", "deploy", "hello", "--code", code, "--secret", "API_KEY"); r.err != nil {
		t.Fatalf("deploy: %v %s", r.err, r.stderr)
	}

	r := cli("", "secret", "rm", "API_KEY")
	if r.err == nil || gust.ErrorCode(r.err) != gust.ECONFLICT {
		t.Fatalf("rm of a used secret: %v", r.err)
	}
	for _, s := range []string{"hello version 1 (live; env)", "gust secret rm --force API_KEY"} {
		if !strings.Contains(errorText(r.err), s) {
			t.Errorf("refusal %q does not say %q", errorText(r.err), s)
		}
	}
	r = cli("", "secret", "rm", "API_KEY", "--force")
	if r.err != nil || r.stdout != "secret API_KEY deleted\n" || !strings.Contains(r.stderr, "  hello version 1 (live; env)\n") {
		t.Fatalf("rm --force: %v, stdout %q, stderr %q", r.err, r.stdout, r.stderr)
	}
	if r := cli("", "secret", "ls"); r.err != nil || strings.Contains(r.stdout, "API_KEY") {
		t.Fatalf("after rm --force: %v %q", r.err, r.stdout)
	}
}
