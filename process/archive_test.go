package process

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func makeTarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	// No compression: the race detector makes flate slow on binaries.
	gz, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipSymlink(t *testing.T, name, target string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name}
	h.SetMode(os.ModeSymlink | 0o777)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte(target))
	zw.Close()
	return buf.Bytes()
}

func TestBadArchives(t *testing.T) {
	d := newDriver(t)
	boot := zipEntry{name: "bootstrap", mode: 0o755, data: []byte("#!/bin/sh\n")}
	zeros := make([]byte, 8<<20)
	cases := []struct {
		name    string
		spec    gust.Spec
		code    []byte
		message string
	}{
		{"not an archive", gust.Spec{Runtime: gust.RuntimeProcess}, []byte("\x7fELF not zipped"), "neither a zip nor a tar.gz"},
		{"zip slip", gust.Spec{Runtime: gust.RuntimeProcess}, makeZip(t, boot, zipEntry{name: "../evil", data: []byte("x")}), `"../evil": path contains '..'`},
		{"absolute", gust.Spec{Runtime: gust.RuntimeProcess}, makeZip(t, zipEntry{name: "/etc/evil", data: []byte("x")}), `"/etc/evil": absolute path`},
		{"symlink out", gust.Spec{Runtime: gust.RuntimeProcess}, zipSymlink(t, "link", "/etc"), `"link": symlink to "/etc" points outside`},
		{"symlink up", gust.Spec{Runtime: gust.RuntimeProcess}, makeTarGz(t, tarEntry{hdr: tar.Header{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "../../x"}}), `"a/l": symlink to "../../x"`},
		{"device", gust.Spec{Runtime: gust.RuntimeProcess}, makeTarGz(t, tarEntry{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}), `"null": device files are not allowed`},
		{"zip bomb", gust.Spec{Runtime: gust.RuntimeProcess}, makeZip(t, zipEntry{name: "zeros", data: zeros[:32<<10]}, zipEntry{name: "big", data: zeros[:8<<20], deflate: true}), `compression ratio above`},
		{"missing bootstrap", gust.Spec{Runtime: gust.RuntimeProcess}, makeZip(t, zipEntry{name: "main", mode: 0o755, data: []byte("x")}), "no bootstrap at its root"},
		{"bootstrap not executable", gust.Spec{Runtime: gust.RuntimeProcess}, makeZip(t, zipEntry{name: "bootstrap", mode: 0o644, data: []byte("x")}), "bootstrap in the archive is not executable"},
		{"missing cmd", gust.Spec{Runtime: gust.RuntimeProcess, Cmd: []string{"./bin/app"}}, makeZip(t, boot), `cmd "./bin/app": the archive has no bin/app`},
		{"missing python handler", gust.Spec{Runtime: gust.RuntimePython3, Handler: "app.handler"}, makeZip(t, zipEntry{name: "handler.py"}), "no app.py at its root"},
		{"missing node handler", gust.Spec{Runtime: gust.RuntimeNodejs, Handler: "index.handler"}, makeZip(t, zipEntry{name: "main.js"}), "no index.js, index.mjs or index.cjs"},
		{"empty tar", gust.Spec{Runtime: gust.RuntimeProcess}, makeTarGz(t), "empty tar.gz"},
		{"duplicate", gust.Spec{Runtime: gust.RuntimeProcess}, makeZip(t, boot, boot), `"bootstrap": appears twice`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadErr(d, "bad", tc.spec, tc.code, nil)
			wantCode(t, err, gust.EINVALID)
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q should contain %q", err, tc.message)
			}
		})
	}
	// Nothing was left behind, inside the work dir or next to it.
	entries, _ := os.ReadDir(d.codeRoot)
	if len(entries) != 0 {
		t.Errorf("code dir holds %d entries after failed loads", len(entries))
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(d.codeRoot), "evil")); err == nil {
		t.Error("zip slip wrote outside the code dir")
	}
}

func TestArchiveLimits(t *testing.T) {
	dir := t.TempDir()
	code := makeZip(t, zipEntry{name: "a", data: make([]byte, 2000)}, zipEntry{name: "b", data: []byte("b")})
	err := extract(code, dir, Limits{MaxBytes: 1000})
	wantCode(t, err, gust.EINVALID)
	if !strings.Contains(err.Error(), `"a": unpacks to 2000 bytes`) {
		t.Errorf("error %q", err)
	}
	err = extract(code, t.TempDir(), Limits{MaxFiles: 1})
	if !strings.Contains(err.Error(), "more than 1 entries") {
		t.Errorf("error %v", err)
	}
}

func TestGoodTarGz(t *testing.T) {
	d := newDriver(t)
	script := "#!/bin/sh\nexec ./bin/real\n"
	code := makeTarGz(t,
		tarEntry{hdr: tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarEntry{hdr: tar.Header{Name: "bin/real", Typeflag: tar.TypeReg, Mode: 0o755}, data: goBuild(t, "", "./testdata/httpfn")},
		tarEntry{hdr: tar.Header{Name: "run.sh", Typeflag: tar.TypeReg, Mode: 0o755}, data: []byte(script)},
		tarEntry{hdr: tar.Header{Name: "bootstrap", Typeflag: tar.TypeSymlink, Linkname: "run.sh"}},
	)
	m := load(t, d, "targz", gust.Spec{Runtime: gust.RuntimeProcess}, code, nil)
	in := start(t, m)
	if resp := mustInvoke(t, in, &gust.Request{Path: "/echo", Body: []byte("ok")}); string(resp.Body) != "ok" {
		t.Errorf("got %q", resp.Body)
	}
}

// A zip bomb is stopped at the first byte past its budget, not after its
// file is written whole.
func TestZipBombStopsEarly(t *testing.T) {
	zeros := make([]byte, 16<<20)
	code := makeZip(t, zipEntry{name: "bomb", data: zeros, deflate: true})
	dir := t.TempDir()
	err := extract(code, dir, Limits{})
	wantCode(t, err, gust.EINVALID)
	if !strings.Contains(err.Error(), "compression ratio above") {
		t.Errorf("error %v", err)
	}
	allowed := max(int64(ratioFloor), int64(len(code))*DefaultLimits.MaxRatio)
	st, err := os.Stat(filepath.Join(dir, "bomb"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > allowed+1 {
		t.Errorf("wrote %d bytes of the bomb, its budget was %d", st.Size(), allowed)
	}
}

// Extraction does not hold the driver's lock, which every cold start
// takes; loads of the same code share one extraction.
func TestExtractionOutsideLock(t *testing.T) {
	d := newDriver(t)
	held := make(chan string, 4)
	release := make(chan struct{})
	var releaseOnce sync.Once
	// Released on every way out, so that a failure does not deadlock the
	// driver's Close.
	defer releaseOnce.Do(func() { close(release) })
	var extractions atomic.Int32
	d.extracted = func(digest string) {
		extractions.Add(1)
		held <- digest
		<-release
	}
	code := makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: []byte("#!/bin/sh\n")})
	type got struct {
		dir string
		err error
	}
	results := make(chan got, 2)
	for range 2 {
		go func() {
			dir, _, err := d.acquireCode(code)
			results <- got{dir, err}
		}()
	}
	var digest string
	select {
	case digest = <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("no extraction began")
	}
	// The lock is free while the extraction is held.
	locked := make(chan struct{})
	go func() { d.nextSeq(); close(locked) }()
	select {
	case <-locked:
	case <-time.After(10 * time.Second):
		t.Fatal("the driver's lock is held during extraction")
	}
	releaseOnce.Do(func() { close(release) })
	for range 2 {
		select {
		case r := <-results:
			if r.err != nil || filepath.Base(r.dir) != digest || !isFile(filepath.Join(r.dir, "bootstrap")) {
				t.Errorf("acquireCode: %q %v", r.dir, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("acquireCode did not return")
		}
	}
	if n := extractions.Load(); n != 1 {
		t.Errorf("%d extractions of the same code, want 1", n)
	}
	d.releaseCode(digest)
	if _, err := os.Stat(filepath.Join(d.codeRoot, digest)); err != nil {
		t.Errorf("released by one of two users: %v", err)
	}
	d.releaseCode(digest)
	if entries, _ := os.ReadDir(d.codeRoot); len(entries) != 0 {
		t.Errorf("code root after the last release: %v", entries)
	}
}
