// Package wasmtest builds gust's example functions and ad-hoc guests for
// tests, in any package: wasmtest.Hello(t) returns the path of a built
// examples/hello, ready to hand to a driver or to deploy.
//
// Builds are cached under os.TempDir()/gust-wasmtest, keyed by a hash of
// their sources (and of the SDK, the build flags and the toolchain), and
// happen at most once per process: a repeated `go test` finds them built.
// A failed build fails the test; the project's toolchain (Go, and clang
// with wasi-libc for C) is a requirement, not an option.
//
// It is for tests only: nothing in the server may import it.
package wasmtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/wasm"
)

// buildTimeout bounds one build: the first build of a Go guest compiles the
// standard library for wasip1, which takes a minute or two on a small
// machine.
const buildTimeout = 10 * time.Minute

// Root returns the root of the gust source tree.
func Root() string {
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		panic("wasmtest: cannot locate its own source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Dir returns os.TempDir()/gust-wasmtest, where builds are cached.
func Dir() string { return filepath.Join(os.TempDir(), "gust-wasmtest") }

// CacheDir returns a wazero compilation cache directory shared by every
// test process, so a Go guest is compiled by wazero once, not once per
// test (an uncached compile takes a second, several under -race). Use it
// as wasm.Config.CacheDir.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Dir(), "wazero-cache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return dir
}

// Hello returns the path of examples/hello (a Go reactor on sdk.Handle).
func Hello(t testing.TB) string {
	t.Helper()
	return goExample(t, "hello")
}

// Thumbnail returns the path of examples/thumbnail (a Go reactor).
func Thumbnail(t testing.TB) string {
	t.Helper()
	return goExample(t, "thumbnail")
}

// HelloC returns the path of examples/hello-c (a C WAGI command).
func HelloC(t testing.TB) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(Root(), "examples", "hello-c", "main.c"))
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return CGuest(t, string(src))
}

// GoGuest builds a Go reactor from the source of its main package and
// returns the path of the .wasm. The source may import
// github.com/gustfaas/gust/sdk and github.com/gustfaas/gust/sdk/lean, and
// the standard library.
func GoGuest(t testing.TB, mainGo string) string {
	t.Helper()
	sdkDir := filepath.Join(Root(), "sdk")
	key := hashOf(t, "go-guest", mainGo, toolchain(), buildFlags(t), treeHash(t, sdkDir))
	return cached(t, key, func(out string) error {
		dir, err := os.MkdirTemp(Dir(), "guest-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		gomod := fmt.Sprintf("module guest\n\ngo 1.26\n\nrequire github.com/gustfaas/gust/sdk v0.0.0\n\nreplace github.com/gustfaas/gust/sdk => %s\n", sdkDir)
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644); err != nil {
			return err
		}
		return buildGo(dir, out)
	})
}

// CGuest builds a C WASI command (a WAGI function) from one source file
// with clang --target=wasm32-wasi and returns the path of the .wasm.
func CGuest(t testing.TB, mainC string) string {
	t.Helper()
	key := hashOf(t, "c-guest", mainC)
	return cached(t, key, func(out string) error {
		dir, err := os.MkdirTemp(Dir(), "cguest-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "main.c")
		if err := os.WriteFile(src, []byte(mainC), 0o644); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "clang", "--target=wasm32-wasi", "-O2", "-Wl,--strip-all", "-o", out, src)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("clang --target=wasm32-wasi (install clang lld wasi-libc libclang-rt-14-dev-wasm32): %w\n%s", err, b)
		}
		return nil
	})
}

// Code reads a built module.
func Code(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return b
}

func goExample(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(Root(), "examples", name)
	key := hashOf(t, "go-example", name, toolchain(), buildFlags(t), treeHash(t, dir), treeHash(t, filepath.Join(Root(), "sdk")))
	return cached(t, key, func(out string) error { return buildGo(dir, out) })
}

func buildGo(dir, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	return wasm.BuildGo(ctx, dir, out)
}

var (
	mu     sync.Mutex
	builds = map[string]*build{}
)

type build struct {
	once sync.Once
	path string
	err  error
}

// cached returns the path of the artifact for key, building it with fn
// (into a temporary name, renamed into place so concurrent test processes
// never see half a file) unless this process or an earlier one did.
func cached(t testing.TB, key string, fn func(out string) error) string {
	t.Helper()
	mu.Lock()
	b := builds[key]
	if b == nil {
		b = &build{}
		builds[key] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		if err := os.MkdirAll(Dir(), 0o755); err != nil {
			b.err = err
			return
		}
		path := filepath.Join(Dir(), key+".wasm")
		if _, err := os.Stat(path); err == nil {
			b.path = path
			return
		}
		tmpDir, err := os.MkdirTemp(Dir(), key+".*.tmp")
		if err != nil {
			b.err = err
			return
		}
		defer os.RemoveAll(tmpDir)
		tmp := filepath.Join(tmpDir, "out.wasm")
		if err := fn(tmp); err != nil {
			b.err = err
			return
		}
		if err := os.Rename(tmp, path); err != nil {
			b.err = err
			return
		}
		b.path = path
	})
	if b.err != nil {
		t.Fatalf("wasmtest: build: %v", b.err)
	}
	return b.path
}

func toolchain() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return goruntime.Version()
	}
	return strings.TrimSpace(string(out))
}

// buildFlags returns the source of wasm.BuildGo, which holds the flags Go
// guests are built with, so a change of flags makes new builds.
func buildFlags(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "wasm", "build.go"))
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return string(b)
}

// treeHash hashes the source files under dir (not built artifacts).
func treeHash(t testing.TB, dir string) string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".mod", ".sum", ".c", ".h":
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("wasmtest: hash %s: %v", dir, err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("wasmtest: %v", err)
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashOf(t testing.TB, parts ...string) string {
	t.Helper()
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d\x00%s", len(p), p)
	}
	return parts[0] + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}
