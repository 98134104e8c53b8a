package process

import (
	"os"
	"path/filepath"
	"testing"
)

func TestZipDirKeepsExecutableBit(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(src, "lib", "data.txt"), []byte("d"), 0o600)
	os.Symlink("lib/data.txt", filepath.Join(src, "link"))
	code, err := ZipDir(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := extract(code, dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"bootstrap": 0o755, "lib/data.txt": 0o644} {
		st, err := os.Stat(filepath.Join(dst, name))
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %v", name, st.Mode(), err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "link")); err != nil || string(b) != "d" {
		t.Errorf("link: %q %v", b, err)
	}
}
