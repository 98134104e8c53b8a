package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust/wasm/wasmtest"
)

// TestTour runs the README's tour with the real binary as separate
// processes: `gust serve` on an embedded NATS, then the CLI verbs against
// it, finding the server and the admin token by their defaults.
func TestTour(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gust binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gust")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--memory-budget", "1024")
	serve.Dir = dir
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		_ = serve.Wait()
	}()
	urlRE := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var url string
	sc := bufio.NewScanner(stderr)
	var logs bytes.Buffer
	for sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		t.Fatalf("gust serve did not say where it listens:\n%s", logs.String())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if st, err := os.Stat(filepath.Join(dir, "gust-data", "admin.token")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token: %v %v", st, err)
	}

	gust := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GUST_URL="+url, "GUST_TOKEN=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String() + errb.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := gust(args...)
		if err != nil {
			t.Fatalf("gust %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	helloSrc := filepath.Join(wasmtest.Root(), "examples", "hello")
	wasmFile := filepath.Join(dir, "hello.wasm")
	must("build", helloSrc, "-o", wasmFile)
	must("deploy", "hello", "--runtime", "wasm", "--code", wasmFile, "--memory", "64", "--timeout", "5s", "--env", "GREETING=Hi")
	manifest := filepath.Join(dir, "gust.yaml")
	if err := os.WriteFile(manifest, []byte("name: hello\nruntime: wasm\ncode: hello.wasm\nmemory: 32\nenv:\n  GREETING: Manifest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := must("deploy", "-f", manifest); !strings.Contains(out, "version 2") {
		t.Fatalf("deploy -f: %s", out)
	}
	if out := must("invoke", "hello", "--path", "/env"); !strings.Contains(out, "GREETING=Manifest") {
		t.Fatalf("invoke after second deploy: %s", out)
	}
	if out := must("ls"); !strings.Contains(out, "hello") {
		t.Fatalf("ls: %s", out)
	}
	if out := must("versions", "hello"); !strings.Contains(out, "64") || !strings.Contains(out, "32") {
		t.Fatalf("versions: %s", out)
	}
	must("rollback", "hello", "1")
	if out := must("invoke", "hello", "--path", "/env"); !strings.Contains(out, "GREETING=Hi") {
		t.Fatalf("invoke after rollback: %s", out)
	}
	if out := must("invoke", "hello", "-d", "some data"); !strings.Contains(out, "Hello, world!") {
		t.Fatalf("invoke -d: %s", out)
	}
	if out, err := gust("invoke", "nothere"); err == nil || !strings.Contains(out, "not_found") {
		t.Fatalf("invoke of a missing function: %v %s", err, out)
	}
	if out, err := gust("deploy", "bad", "--runtime", "wasm", "--code", manifest); err == nil || !strings.Contains(out, "invalid") {
		t.Fatalf("deploy of a non-wasm file: %v %s", err, out)
	}
	must("status")
	must("rm", "hello")
	if out := must("ls"); strings.Contains(out, "hello") {
		t.Fatalf("ls after rm: %s", out)
	}
}
