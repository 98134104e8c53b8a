package client_test

import (
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
