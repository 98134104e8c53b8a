package process

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// buildDir holds binaries built once per test run.
var (
	buildDir  string
	buildMu   sync.Mutex
	buildOnce = map[string]string{}
)

func TestMain(m *testing.M) {
	// The driver re-executes this test binary as its sandbox helper.
	RunSandboxHelperIfRequested()
	dir, err := os.MkdirTemp("", "gust-process-test-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goBuild builds a static linux binary from a package dir (relative to
// this package, or absolute) once per run. modDir, if set, is the module
// to build in (for examples with their own go.mod).
func goBuild(t *testing.T, modDir, pkg string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := modDir + "|" + pkg
	out, ok := buildOnce[key]
	if !ok {
		out = filepath.Join(buildDir, strings.NewReplacer("/", "_", ".", "_", "|", "_").Replace(key))
		cmd := exec.Command("go", "build", "-o", out, pkg)
		if modDir != "" {
			cmd.Dir = modDir
		}
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		buildOnce[key] = out
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zipEntry is one file of a test archive.
type zipEntry struct {
	name    string
	mode    os.FileMode
	data    []byte
	deflate bool // even when large
}

func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		// Stored, not deflated: the race detector makes flate slow, and
		// test binaries are megabytes.
		method := zip.Deflate
		if len(e.data) > 64<<10 && !e.deflate {
			method = zip.Store
		}
		h := &zip.FileHeader{Name: e.name, Method: method}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// logSink records function output.
type logSink struct {
	mu    sync.Mutex
	lines []string // "id stream text"
}

func (s *logSink) FunctionLog(function string, version int, id, stream string, p []byte) {
	s.mu.Lock()
	s.lines = append(s.lines, id+" "+stream+" "+strings.TrimRight(string(p), "\n"))
	s.mu.Unlock()
}

func (s *logSink) has(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// waitLog waits a bounded time for a line: output is copied from the
// process asynchronously.
func (s *logSink) waitLog(t *testing.T, sub string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if s.has(sub) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("no log line containing %q in:\n%s", sub, strings.Join(s.lines, "\n"))
}

var (
	sharedDriver     *Driver
	sharedDriverErr  error
	sharedDriverOnce sync.Once
)

// newDriver returns a driver whose work dir lives for the test.
func newDriver(t *testing.T) *Driver {
	t.Helper()
	d, err := New(Config{
		WorkDir:      t.TempDir(),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		StartTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func driverFor(t *testing.T, d *Driver, runtime string) gust.Driver {
	t.Helper()
	for _, rd := range d.Drivers() {
		if rd.Runtime() == runtime {
			return rd
		}
	}
	t.Fatalf("no driver for %s", runtime)
	return nil
}

var versionSeq struct {
	sync.Mutex
	n int
}

func load(t *testing.T, d *Driver, name string, spec gust.Spec, code []byte, sink gust.LogSink) gust.Module {
	t.Helper()
	m, err := loadErr(d, name, spec, code, sink)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func loadErr(d *Driver, name string, spec gust.Spec, code []byte, sink gust.LogSink) (gust.Module, error) {
	versionSeq.Lock()
	versionSeq.n++
	n := versionSeq.n
	versionSeq.Unlock()
	v := &gust.Version{Function: name, Number: n, Spec: spec}
	for _, rd := range d.Drivers() {
		if rd.Runtime() == spec.WithDefaults().Runtime {
			return rd.Load(context.Background(), v, code, sink)
		}
	}
	return nil, errors.New("no driver")
}

func start(t *testing.T, m gust.Module) gust.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := m.NewInstance(ctx)
	if err != nil {
		t.Fatalf("NewInstance: %v", err)
	}
	t.Cleanup(func() { in.Close(context.Background()) })
	return in
}

func invoke(t *testing.T, in gust.Instance, timeout time.Duration, req *gust.Request) (*gust.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if req.Method == "" {
		req.Method = "GET"
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	return in.Invoke(ctx, req)
}

func mustInvoke(t *testing.T, in gust.Instance, req *gust.Request) *gust.Response {
	t.Helper()
	resp, err := invoke(t, in, 20*time.Second, req)
	if err != nil {
		t.Fatalf("Invoke %s: %v", req.Path, err)
	}
	return resp
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if gust.ErrorCode(err) != code {
		t.Fatalf("error %v: code %q, want %q", err, gust.ErrorCode(err), code)
	}
}

func sortedEnv(env []string) []string {
	out := append([]string(nil), env...)
	sort.Strings(out)
	return out
}
