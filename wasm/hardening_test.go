package wasm_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// filesAtInit reads a file of its files mount in init and serves it.
const filesAtInit = `package main

import (
	"os"

	"github.com/gustfaas/gust/sdk/lean"
)

var msg []byte

func init() {
	msg, _ = os.ReadFile("/files/msg.txt")
	lean.HandleFunc(func(r *lean.Request) *lean.Response {
		return lean.Text(200, string(msg)+" "+os.Getenv("WHO"))
	})
}

func main() {}
`

func tarOne(t *testing.T, name, data string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Two versions of the same code whose files (or environment) differ must
// not share a snapshot: a restored instance of v2 would serve what v1's
// init read.
func TestSnapshotKeyedOnWhatInitSees(t *testing.T) {
	archives := map[string][]byte{
		"sha256:a": tarOne(t, "msg.txt", "files of v1"),
		"sha256:b": tarOne(t, "msg.txt", "files of v2"),
	}
	dir := t.TempDir()
	code := wasmtest.Code(t, wasmtest.GoGuest(t, filesAtInit))
	versions := []struct {
		digest, who, want string
	}{
		{"sha256:a", "x", "files of v1 x"},
		{"sha256:b", "x", "files of v2 x"},
		{"sha256:b", "y", "files of v2 y"},
		{"sha256:a", "x", "files of v1 x"},
	}
	// A driver per version, as after a restart: a snapshot is found on
	// disk by its key.
	for i, v := range versions {
		d, err := wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(t), SnapshotDir: dir,
			Archive: func(_ context.Context, dg string) ([]byte, error) { return archives[dg], nil }})
		if err != nil {
			t.Fatal(err)
		}
		spec := gust.Spec{Runtime: gust.RuntimeWasm, Env: map[string]string{"WHO": v.who}, Files: &gust.Files{Digest: v.digest}}
		m, err := d.Load(context.Background(), &gust.Version{Function: "fn", Number: i + 1, Spec: spec}, code, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 2; j++ {
			inst := start(t, m)
			resp := invoke(t, inst, get("/", ""))
			if string(resp.Body) != v.want {
				t.Errorf("v%d instance %d (snapshot %s): %q, want %q", i+1, j, m.(interface{ SnapshotState() string }).SnapshotState(), resp.Body, v.want)
			}
			inst.Close(context.Background())
		}
		if st := m.(interface{ SnapshotState() string }).SnapshotState(); st != "ready" {
			t.Errorf("v%d: snapshot %s, want ready", i+1, st)
		}
		m.Close(context.Background())
		d.Close(context.Background())
	}
}

// lateHandle is a reactor's request function whose call succeeds but
// returns only once the call's deadline has closed the module, as wazero
// does when the deadline passes the moment a call returns.
type lateHandle struct {
	api.Function
	mod api.Module
}

func (h lateHandle) CallWithStack(ctx context.Context, stack []uint64) error {
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = h.mod.CloseWithExitCode(context.Background(), sys.ExitCodeDeadlineExceeded)
		close(closed)
	})
	defer stop()
	if err := h.Function.CallWithStack(ctx, stack); err != nil {
		return err
	}
	<-closed
	return nil
}

// A call that returns a good response as its deadline closes the module
// keeps its response; the instance is then discarded, and never reports a
// timeout for a call that did not take any time.
func TestReactorClosedByDeadlineAsCallReturns(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, wasmtest.GoGuest(t, misbehave), gust.Spec{Runtime: gust.RuntimeWasm, Snapshot: new(bool)}, nil)
	for _, timed := range []bool{true, false} {
		inst := start(t, m)
		wasm.WrapHandle(inst, func(mod api.Module, f api.Function) api.Function { return lateHandle{f, mod} })
		call := func() (*gust.Response, error) {
			if timed {
				return inst.(interface {
					InvokeTimeout(context.Context, time.Duration, *gust.Request) (*gust.Response, error)
				}).InvokeTimeout(context.Background(), 50*time.Millisecond, get("/", ""))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			return inst.Invoke(ctx, get("/", ""))
		}
		resp, err := call()
		if err != nil || resp.Status != 200 {
			t.Fatalf("timed=%v: first call: %v %v, want its good response", timed, resp, err)
		}
		if inst.(interface{ Usable() bool }).Usable() {
			t.Errorf("timed=%v: instance closed by its deadline still usable", timed)
		}
		_, err = call()
		wantCode(t, err, gust.EINTERNAL, "discarded")
	}
}

// Out of memory is told from other failures by what the guest said first,
// then by how full its memory was, with a margin that leaves a small
// limit room to fail otherwise.
func TestOutOfMemoryToldFromOtherFailures(t *testing.T) {
	d := newDriver(t)
	trap := wasmtest.CGuest(t, "#include <stdio.h>\nint main(void){ printf(\"Content-Type: text/plain\\n\\n\"); fflush(stdout); __builtin_trap(); }\n")
	says := wasmtest.CGuest(t, "#include <stdio.h>\nint main(void){ fprintf(stderr, \"cache: out of memory, evicting\\n\"); __builtin_trap(); }\n")
	goGuest := wasmtest.GoGuest(t, misbehave)
	for _, c := range []struct {
		path     string
		req      string
		mb       int
		code     string
		contains string
	}{
		{trap, "/", 1, gust.EFUNCTION, "trapped"},
		{trap, "/", 4, gust.EFUNCTION, "trapped"},
		{trap, "/", 5, gust.EFUNCTION, "trapped"},
		{says, "/", 128, gust.EFUNCTION, "trapped"},
		{goGuest, "/panic", 8, gust.EFUNCTION, "panicked"},
		{goGuest, "/panic", 16, gust.EFUNCTION, "panicked"},
		{goGuest, "/hog", 8, gust.EOOM, "memory limit of 8 MB"},
	} {
		m := load(t, d, c.path, gust.Spec{Runtime: gust.RuntimeWasm, MemoryMB: c.mb}, nil)
		_, err := start(t, m).Invoke(context.Background(), get(c.req, "why=x"))
		if gust.ErrorCode(err) != c.code || !strings.Contains(gust.ErrorMessage(err), c.contains) {
			t.Errorf("%s %s at %d MB: %s %v, want %s containing %q", m.Shape(), c.req, c.mb, gust.ErrorCode(err), err, c.code, c.contains)
		}
	}
}

// printEnv is a WAGI command that answers with its environment.
const printEnv = `#include <stdio.h>
extern char **environ;
int main(void) {
	printf("Content-Type: text/plain\n\n");
	for (char **e = environ; *e; e++) printf("%s\n", *e);
	return 0;
}
`

// A request that cannot become a CGI environment is the caller's error,
// and header names that cannot be variables are left out, as net/http/cgi
// does; a Proxy header never becomes HTTP_PROXY.
func TestWAGIEnvironmentFromOddRequests(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, wasmtest.CGuest(t, printEnv), gust.Spec{Runtime: gust.RuntimeWasm}, nil)
	inst := start(t, m)
	_, err := inst.Invoke(context.Background(), get("/a\x00b", ""))
	wantCode(t, err, gust.EINVALID, "PATH_INFO holds a NUL byte")

	req := get("/ok", "")
	req.Header = http.Header{"A=b": {"1"}, "X.y": {"2"}, "Proxy": {"http://evil.test"}, "X-Ok": {"3"}}
	resp := invoke(t, inst, req)
	body := string(resp.Body)
	if !strings.Contains(body, "\nHTTP_X_OK=3\n") || !strings.Contains(body, "\nPATH_INFO=/ok\n") {
		t.Errorf("environment lacks the request's variables:\n%s", body)
	}
	for _, bad := range []string{"HTTP_PROXY", "HTTP_A=", "HTTP_X.Y"} {
		if strings.Contains(body, bad) {
			t.Errorf("environment holds %s:\n%s", bad, body)
		}
	}
}

// A compiled-code cache entry cut short or damaged (a crash mid-write on a
// file system that does not order rename after the data, a full disk, a
// bad sector) is dropped and the module compiled again: it must not fail
// every later Load until someone deletes the file.
func TestCorruptCompilationCacheRecompiled(t *testing.T) {
	dir := t.TempDir()
	code := wasmtest.Code(t, wasmtest.HelloC(t))
	load := func(t *testing.T) {
		t.Helper()
		d, err := wasm.New(wasm.Config{CacheDir: dir, NoSnapshots: true})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close(context.Background())
		m, err := d.Load(context.Background(), version("fn", gust.Spec{}), code, nil)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		defer m.Close(context.Background())
		inst := start(t, m)
		if resp := invoke(t, inst, get("/", "")); resp.Status != 200 {
			t.Fatalf("status %d", resp.Status)
		}
	}
	load(t)
	var entry string
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			entry = p
		}
		return err
	})
	if err != nil || entry == "" {
		t.Fatalf("no cache entry written: %v", err)
	}
	good, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	damage := map[string]func([]byte) []byte{
		"empty":          func(b []byte) []byte { return nil },
		"header only":    func(b []byte) []byte { return b[:10] },
		"half":           func(b []byte) []byte { return b[:len(b)/2] },
		"last byte gone": func(b []byte) []byte { return b[:len(b)-1] },
		"code flipped":   func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b },
		"function count": func(b []byte) []byte {
			// magic, version length, version, then the count.
			n := 7 + int(b[6])
			binary.LittleEndian.PutUint32(b[n:], 0xffffffff)
			return b
		},
	}
	for name, f := range damage {
		if err := os.WriteFile(entry, f(bytes.Clone(good)), 0o600); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			t.Run(fmt.Sprintf("%s/%d", name, i), load)
		}
	}
}

// A driver removes at start what other boots and wazero builds left in its
// directories, leaves another build's recent directories to whoever may
// still use them, and never touches what is not its own.
func TestDriverPrunesOtherBootsAndBuilds(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	mk := func(path string, age time.Time) string {
		t.Helper()
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		for q := p; q != dir; q = filepath.Dir(q) {
			if err := os.Chtimes(q, age, age); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	d, err := wasm.New(wasm.Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	snaps := wasm.SnapshotDir(d)
	d.Close(context.Background())
	ownBuild, err := filepath.Rel(dir, snaps)
	if err != nil {
		t.Fatal(err)
	}
	ownBoot := filepath.Dir(ownBuild)
	ownCode := wazero.CompilationCacheDirName()

	gone := []string{
		mk("wazero-v1.12.0-gust.1-amd64-linux/entry", old),
		mk("gust-snapshots/some-earlier-boot/0123456789ab/snapshot-1.snap", time.Now()),
		mk(filepath.Join(ownBoot, "0123456789ab", "snapshot-2.snap"), old),
		mk("snapshot-0123.snap", old),
		mk(".snapshot-1.tmp", old),
	}
	kept := []string{
		mk(filepath.Join(ownCode, "entry"), old),
		mk(filepath.Join(ownBuild, "snapshot-3.snap"), old),
		mk("wazero-v1.12.0-gust.9-amd64-linux/entry", time.Now()), // another build, in use
		mk(filepath.Join(ownBoot, "ba9876543210", "snapshot-4.snap"), time.Now()),
		mk("snapshot-4567.snap", time.Now()),
		mk("other/wazero-x/entry", old), // not the driver's
		mk("notes.txt", old),
	}
	d, err = wasm.New(wasm.Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d.Close(context.Background())
	for _, p := range gone {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s not removed (%v)", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}
