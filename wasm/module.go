package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/gustfaas/gust"
)

// module is compiled code of one version. It implements gust.Module.
type module struct {
	d        *Driver
	rt       *runtime
	compiled wazero.CompiledModule
	shape    string
	function string
	version  int
	spec     gust.Spec // with defaults
	logs     gust.LogSink
	limit    uint64 // memory limit in bytes
	memories memoryPool
	caps     *caps // what the spec grants through the host module
	// importsHost is whether the module imports gust's host functions:
	// only then does a call carry their state.
	importsHost bool
	// abi2 is whether the reactor speaks ABI version 2 (it exports
	// gust_handle_v2): its requests then carry the raw path. A guest of an
	// older SDK speaks version 1 and gets requests without it.
	abi2 bool

	// snap is nil when instances start normally from compiled; then
	// snapOff says why. Otherwise compiled is the rewrite for snapshots
	// (see snapshotModule) and data its data segments.
	snap    *snapshotter
	snapOff string
	data    []dataSegment
	shells  shells   // instances made ahead for restores (see shell.go)
	rec     recycler // memories of closed restored instances (Linux)
}

// Snapshotted reports whether new instances of the module start from a
// pre-initialized snapshot instead of running their initialization. It
// turns true once the first instance has been captured (or at Load, when a
// sound snapshot from an earlier run was found).
func (m *module) Snapshotted() bool { return m.snap != nil && m.snap.ready() != nil }

// SnapshotState describes the module's snapshot for people: "ready",
// "pending" (no instance captured yet), "off: REASON" (turned off, or the
// module cannot be snapshotted) or "unsupported: REASON" (capture failed).
func (m *module) SnapshotState() string {
	if m.snap == nil {
		return "off: " + m.snapOff
	}
	return m.snap.stateString()
}

func (m *module) Shape() string { return m.shape }

func (m *module) NewInstance(ctx context.Context) (gust.Instance, error) {
	if m.shape == ShapeWAGI {
		return &wagiInstance{m: m}, nil
	}
	return m.newReactor(ctx)
}

func (m *module) Close(ctx context.Context) error {
	m.closeShells(ctx)
	m.rec.close()
	m.caps.close()
	if m.snap != nil {
		m.snap.close()
	}
	if err := m.compiled.Close(ctx); err != nil {
		return fmt.Errorf("close compiled module of %s v%d: %w", m.function, m.version, err)
	}
	return nil
}

// config returns a fresh module configuration: the spec's environment,
// its files read-only at gust.FilesMount, and nothing else from the host
// (no file system at all without files). It is built anew for each instance because
// wazero's ModuleConfig.WithEnv appends to a slice its clones share, which
// races when one base config is extended from several goroutines.
// Whatever it gives a reactor's initialization must be in snapshotKey too.
func (m *module) config(extraEnv ...string) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(m.function).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	if m.caps != nil && m.caps.files != nil {
		cfg = cfg.WithFSConfig(wazero.NewFSConfig().WithFSMount(m.caps.files, gust.FilesMount))
	}
	keys := make([]string, 0, len(m.spec.Env))
	for k := range m.spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cfg = cfg.WithEnv(k, m.spec.Env[k])
	}
	for i := 0; i+1 < len(extraEnv); i += 2 {
		cfg = cfg.WithEnv(extraEnv[i], extraEnv[i+1])
	}
	return cfg
}

// callError turns what a guest call returned into the error the pool acts
// on. what names the failing step ("initialization"), or is "" for the
// invocation itself. memSize is the instance's memory size in bytes after the failure (0 if
// unknown); stderr holds the tail of what the guest wrote to stderr during
// the call.
func (m *module) callError(ctx context.Context, err error, memSize uint64, stderr *logWriter, what string) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return gust.WrapError(gust.ETIMEOUT, err, "function timed out after %s", m.spec.Timeout)
		case sys.ExitCodeContextCanceled:
			return gust.WrapError(gust.EUNAVAILABLE, err, "invocation canceled")
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return gust.WrapError(gust.ETIMEOUT, err, "function timed out after %s", m.spec.Timeout)
		}
		return gust.WrapError(gust.EUNAVAILABLE, err, "invocation canceled")
	}
	// What the guest said of its crash comes first: a panic or a fatal
	// error other than out of memory is no memory limit, however full
	// the memory was when it happened.
	detail := stderr.crashLine()
	if m.outOfMemory(memSize, detail) {
		return gust.WrapError(gust.EOOM, err, "function exceeded its memory limit of %d MB", m.spec.MemoryMB)
	}
	subject := "function"
	if what != "" {
		subject = "function " + what
	}
	if msg, ok := strings.CutPrefix(detail, "panic: "); ok {
		return gust.WrapError(gust.EFUNCTION, err, "function panicked: %s", msg)
	}
	if strings.HasPrefix(detail, "fatal error: ") {
		return gust.WrapError(gust.EFUNCTION, err, "function crashed: %s", detail)
	}
	if exit != nil {
		if detail != "" {
			return gust.WrapError(gust.EFUNCTION, err, "%s exited with code %d: %s", subject, exit.ExitCode(), detail)
		}
		return gust.WrapError(gust.EFUNCTION, err, "%s exited with code %d", subject, exit.ExitCode())
	}
	trap, _, _ := strings.Cut(err.Error(), "\n")
	trap = strings.TrimPrefix(trap, "wasm error: ")
	if detail != "" {
		return gust.WrapError(gust.EFUNCTION, err, "%s trapped (%s): %s", subject, trap, detail)
	}
	return gust.WrapError(gust.EFUNCTION, err, "%s trapped: %s", subject, trap)
}

// oomSlack is how close to the limit a failing instance's memory must be to
// count as out of memory: Go's allocator grows the heap in arenas of 4 MiB,
// so its last failed memory.grow can leave that much unused. A small limit
// takes half of itself instead, or every failure of a function of 4 MB or
// less would count as out of memory.
const oomSlack = 4<<20 + 64<<10

// outOfMemory tells an instance that died of its memory limit from other
// failures. WebAssembly has no signal for it: memory.grow returns -1 and the
// guest decides what to do, so look at what it said (detail, its crash
// line) and at how much memory it had. Go's runtime throws "fatal error:
// out of memory" and Rust's aborts after "memory allocation of N bytes
// failed"; any other panic or fatal error is the function's own, and a
// guest that merely prints "out of memory" has not run out of it.
func (m *module) outOfMemory(memSize uint64, detail string) bool {
	switch {
	case strings.HasPrefix(detail, "fatal error: "):
		return strings.Contains(detail, "out of memory")
	case strings.HasPrefix(detail, "panic: "):
		return false
	case strings.HasPrefix(detail, "memory allocation of ") && strings.HasSuffix(detail, " failed"):
		return true
	}
	return memSize > 0 && memSize+min(oomSlack, m.limit/2) >= m.limit
}
