package process

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
)

func seedZip(f *testing.F, files map[string]string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			f.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}

func seedTarGz(f *testing.F, hdrs []*tar.Header) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	_ = tw.Close()
	_ = gz.Close()
	return b.Bytes()
}

// The archive extractor unpacks uploaded code: untrusted bytes. Whatever
// they are, it must answer an error or unpack inside its directory, within
// its limits, and never panic.
func FuzzExtract(f *testing.F) {
	f.Add(seedZip(f, map[string]string{"bootstrap": "#!/bin/sh\n", "lib/a.txt": "a"}))
	f.Add(seedZip(f, map[string]string{"../escape": "x"}))
	f.Add(seedTarGz(f, []*tar.Header{
		{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "dir/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "dir/f"},
	}))
	f.Add(seedTarGz(f, []*tar.Header{{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}))
	f.Add([]byte("PK\x05\x06"))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Add([]byte("plain text"))
	lim := Limits{MaxBytes: 1 << 20, MaxFiles: 64, MaxRatio: 200}
	f.Fuzz(func(t *testing.T, code []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "x")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		err := extract(code, dir, lim)
		if err != nil {
			if c := gust.ErrorCode(err); c != gust.EINVALID && c != gust.EINTERNAL {
				t.Fatalf("error code %q: %v", c, err)
			}
		}
		// Nothing may land beside dir, whatever happened.
		entries, rerr := os.ReadDir(parent)
		if rerr != nil || len(entries) != 1 {
			t.Fatalf("extraction wrote outside its directory: %v %v", entries, rerr)
		}
		var total int64
		files := 0
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dir {
				return nil
			}
			files++
			if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
				total += info.Size()
			}
			if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				t.Fatalf("entry %s outside %s", p, dir)
			}
			return nil
		})
		if err == nil && (total > lim.MaxBytes || files > lim.MaxFiles) {
			t.Fatalf("unpacked %d bytes in %d entries, over the limits", total, files)
		}
	})
}
