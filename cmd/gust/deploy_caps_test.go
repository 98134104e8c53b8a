package main

import (
	"archive/tar"
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// The capabilities of a wasm function travel in the spec, and its files
// directory as a tar in the upload's "files" part.
func TestDeployCapabilities(t *testing.T) {
	api := newFakeAPI(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "fn.wasm"), "\x00asm")
	writeFile(t, filepath.Join(dir, "static", "index.html"), "<h1>hi</h1>")
	writeFile(t, filepath.Join(dir, "static", "data", "a.json"), "{}")
	manifest := writeFile(t, filepath.Join(dir, "gust.yaml"), "name: fetch\ncode: fn.wasm\nallowedHosts: [api.example.com]\nkv: true\nfiles: static\n")

	r := runCLI(t, api.URL, "", "deploy", "-f", manifest)
	if r.err != nil {
		t.Fatal(r.err)
	}
	req := api.last()
	spec := sentSpec(t, req)
	if !spec.KV || strings.Join(spec.AllowedHosts, ",") != "api.example.com" || spec.Files == nil {
		t.Fatalf("spec = %+v", spec)
	}
	p, ok := req.Parts["files"]
	if !ok {
		t.Fatal("no files part")
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(p.Data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != "data/ data/a.json index.html" {
		t.Fatalf("archive holds %q", got)
	}

	// Flags override the manifest: no files, other hosts, no kv.
	r = runCLI(t, api.URL, "", "deploy", "-f", manifest, "--files", "", "--allow-host", "a.example.com", "--allow-host", "*.b.example.com", "--kv=false")
	if r.err != nil {
		t.Fatal(r.err)
	}
	req = api.last()
	spec = sentSpec(t, req)
	if spec.KV || spec.Files != nil || strings.Join(spec.AllowedHosts, ",") != "a.example.com,*.b.example.com" {
		t.Fatalf("spec = %+v", spec)
	}
	if _, ok := req.Parts["files"]; ok {
		t.Fatal("files part without files")
	}

	r = runCLI(t, api.URL, "", "deploy", "x", "--code", filepath.Join(dir, "fn.wasm"), "--files", filepath.Join(dir, "missing"))
	if r.err == nil || !strings.Contains(r.err.Error(), "files directory") {
		t.Fatalf("missing files directory: %v", r.err)
	}
}
