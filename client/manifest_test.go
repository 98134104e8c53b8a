package client_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
)

func TestParseManifest(t *testing.T) {
	m, err := client.ParseManifest([]byte(`
name: hello
code: build/hello.wasm
runtime: wasm
memory: 64
timeout: 1m30s
idleTimeout: 10m
queueTimeout: 250ms
maxConcurrency: 20
minInstances: 1
perInstanceConcurrency: 1
maxBodyBytes: 1048576
env:
  GREETING: hi
  EMPTY: ""
`))
	if err != nil {
		t.Fatal(err)
	}
	want := client.Manifest{Name: "hello", Code: "build/hello.wasm", Spec: gust.Spec{
		Runtime: "wasm", MemoryMB: 64, Timeout: gust.Duration(90 * time.Second),
		IdleTimeout: gust.Duration(10 * time.Minute), QueueTimeout: gust.Duration(250 * time.Millisecond),
		MaxConcurrency: 20, MinInstances: 1, PerInstanceConcurrency: 1, MaxBodyBytes: 1 << 20,
		Env: map[string]string{"GREETING": "hi", "EMPTY": ""},
	}}
	if m.Name != want.Name || m.Code != want.Code || m.Runtime != want.Runtime || m.MemoryMB != want.MemoryMB ||
		m.Timeout != want.Timeout || m.IdleTimeout != want.IdleTimeout || m.QueueTimeout != want.QueueTimeout ||
		m.MaxConcurrency != want.MaxConcurrency || m.MinInstances != want.MinInstances ||
		m.PerInstanceConcurrency != want.PerInstanceConcurrency || m.MaxBodyBytes != want.MaxBodyBytes ||
		len(m.Env) != 2 || m.Env["GREETING"] != "hi" {
		t.Errorf("manifest = %+v\nwant %+v", *m, want)
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name, yaml, contains string
	}{
		{"unknown field", "name: hello\nmemroy: 64\n", `unknown field "memroy"`},
		{"bad duration", "timeout: soon\n", `invalid duration "soon"`},
		{"bare number duration", "timeout: 30\n", "timeout: write a duration with its unit"},
		{"bad name", "name: Hello_World\n", `invalid function name "Hello_World"`},
		{"duplicate field", "memory: 1\nmemory: 2\n", "memory"},
		{"wrong type", "memory: lots\n", "memory"},
		{"not a mapping", "- a\n- b\n", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.ParseManifest([]byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("err = %q (%s), want invalid containing %q", err, gust.ErrorCode(err), tt.contains)
			}
		})
	}
}

func TestLoadManifestResolvesCode(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "fn")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "gust.yaml")
	if err := os.WriteFile(path, []byte("name: hello\ncode: out/hello.wasm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := client.LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(sub, "out", "hello.wasm"); m.Code != want {
		t.Errorf("code = %q, want %q", m.Code, want)
	}

	abs := filepath.Join(dir, "abs.wasm")
	if err := os.WriteFile(path, []byte("code: "+abs+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err = client.LoadManifest(path); err != nil || m.Code != abs {
		t.Errorf("absolute code = %q (%v), want %q unchanged", m.Code, err, abs)
	}

	if _, err := client.LoadManifest(filepath.Join(dir, "missing.yaml")); gust.ErrorCode(err) != gust.EINVALID {
		t.Errorf("missing file: err = %v, want invalid", err)
	}
}

func TestManifestCapabilities(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gust.yaml")
	if err := os.WriteFile(path, []byte("name: fetch\ncode: f.wasm\nallowedHosts: [api.example.com, \"*.cdn.example.com\"]\nkv: true\nfiles: static\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := client.LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if !m.KV || len(m.AllowedHosts) != 2 || m.AllowedHosts[1] != "*.cdn.example.com" || m.Files == nil || m.Files.Dir != filepath.Join(dir, "static") {
		t.Fatalf("manifest = %+v, files %+v", m, m.Files)
	}
	for _, bad := range []string{"allowedHost: [a.b]\n", "files: {path: x}\n", "kv: yes please\n"} {
		if _, err := client.ParseManifest([]byte(bad)); gust.ErrorCode(err) != gust.EINVALID {
			t.Errorf("%q: %v, want EINVALID", bad, err)
		}
	}
}

func TestTarDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("b"), 0o600)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644)
	one, err := client.TarDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The same contents make the same archive, whatever the times.
	os.Chtimes(filepath.Join(dir, "a.txt"), time.Unix(1, 0), time.Unix(1, 0))
	two, err := client.TarDir(dir)
	if err != nil || !bytes.Equal(one, two) {
		t.Fatalf("archives differ (%v)", err)
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
	if _, err := client.TarDir(dir); gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), "link") {
		t.Fatalf("symlink: %v", err)
	}
	if _, err := client.TarDir(filepath.Join(dir, "a.txt")); gust.ErrorCode(err) != gust.EINVALID {
		t.Fatalf("a file: %v", err)
	}
}
