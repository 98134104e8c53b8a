package wasm

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"strings"
	"testing"
)

// A files archive comes from a user: filesFS must answer an error or a
// file system whose every path stays inside it, never panic.
func FuzzFilesFS(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "dir/a.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("hi"))
	tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Size: 0})
	tw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys, err := filesFS(b)
		if err != nil {
			return
		}
		err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(p, "..") || strings.HasPrefix(p, "/") {
				t.Fatalf("path %q leaves the root", p)
			}
			if !d.IsDir() {
				if _, err := fs.ReadFile(fsys, p); err != nil {
					t.Fatalf("read %s: %v", p, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
	})
}

func TestHostMatcher(t *testing.T) {
	m := newHostMatcher([]string{"api.example.com", "*.cdn.example.com"})
	for host, ok := range map[string]bool{
		"api.example.com":      true,
		"API.Example.com.":     true,
		"a.cdn.example.com":    true,
		"a.b.cdn.example.com":  true,
		"cdn.example.com":      false,
		"example.com":          false,
		"evilcdn.example.com":  false,
		"api.example.com.evil": false,
		"127.0.0.1":            false,
		"::1":                  false,
		"2130706433":           false,
		"0x7f.1":               false,
		"":                     false,
	} {
		if err := m.check(host); (err == nil) != ok {
			t.Errorf("check(%q) = %v, want allowed %v", host, err, ok)
		}
	}
}

func TestRefuseLocal(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80":          false,
		"127.9.9.9:80":          false,
		"[::1]:443":             false,
		"[::ffff:127.0.0.1]:80": false,
		"169.254.169.254:80":    false,
		"0.0.0.0:80":            false,
		"224.0.0.1:80":          false,
		"10.0.0.1:80":           true,
		"93.184.216.34:443":     true,
		"[2606:4700::1]:443":    true,
	} {
		if err := refuseLocal("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("refuseLocal(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
}
