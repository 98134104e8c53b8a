package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/gustfaas/gust"
)

// Config configures a Driver.
type Config struct {
	// CacheDir holds wazero's compilation cache, so compiled code survives
	// a restart. Empty means an in-memory cache shared by this Driver only.
	CacheDir string
	// SnapshotDir holds pre-initialized snapshots of reactors (see
	// Snapshotted), under gust-snapshots/BOOT/BUILD. Empty means CacheDir;
	// if both are empty, each snapshot lives in an unlinked temporary file
	// for as long as its module. New removes what other boots and builds
	// left in both directories (see prune.go): they must be the node's own.
	SnapshotDir string
	// NoSnapshots turns snapshots off for every function. Spec.Snapshot
	// false turns them off for one.
	NoSnapshots bool
	// Logger receives the driver's own logs. Nil means slog.Default().
	Logger *slog.Logger

	// Dial opens the connections of functions' outbound HTTP requests,
	// after their host has been checked against the function's
	// allowedHosts. Nil means a net.Dialer, which resolves names as the
	// host does. Tests map a name to 127.0.0.1 here:
	//
	//	Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
	//		return (&net.Dialer{}).DialContext(ctx, network, strings.Replace(addr, "api.test", "127.0.0.1", 1))
	//	}
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxRequests bounds a function's outbound HTTP requests per
	// invocation, redirects not counted (default DefaultMaxRequests).
	MaxRequests int
	// MaxResponseBytes bounds the body of an outbound response (default
	// DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// MaxValueBytes bounds a value in a function's key-value store
	// (default DefaultMaxValueBytes).
	MaxValueBytes int
	// Archive returns a stored files archive by its digest (the
	// registry's Code). Nil: a function that declares files fails to load.
	Archive func(ctx context.Context, digest string) ([]byte, error)
	// KV opens a function's key-value store, creating it if needed. Nil:
	// a function that declares kv fails to load.
	KV func(ctx context.Context, function string) (KV, error)
}

// Driver runs WebAssembly functions. It is safe for concurrent use.
type Driver struct {
	cfg         Config
	log         *slog.Logger
	cache       wazero.CompilationCache
	snapshotDir string
	noSnapshots bool

	mu       sync.Mutex
	runtimes map[int]*runtime // by Spec.MemoryMB
	closed   bool
}

// runtime is one wazero runtime, with the memory limit of every module
// loaded into it, and its WASI host module.
type runtime struct {
	memoryMB int
	r        wazero.Runtime
	wasi     map[string]api.FunctionDefinition // WASI preview 1 as wazero defines it
	host     map[string]api.FunctionDefinition // gust's host functions
}

var _ gust.Driver = (*Driver)(nil)

// New returns a Driver. It creates cfg.CacheDir if needed.
func New(cfg Config) (*Driver, error) {
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = DefaultMaxRequests
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxValueBytes <= 0 {
		cfg.MaxValueBytes = DefaultMaxValueBytes
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, runtimes: map[int]*runtime{}, noSnapshots: cfg.NoSnapshots}
	snapshotBase := cfg.SnapshotDir
	if snapshotBase == "" {
		snapshotBase = cfg.CacheDir
	}
	if snapshotBase != "" {
		d.snapshotDir = filepath.Join(snapshotBase, snapshotSubdir())
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache in %s: %w", cfg.CacheDir, err)
		}
		d.cache = c
	} else {
		d.cache = wazero.NewCompilationCache()
	}
	pruneCaches(d.log, cfg.CacheDir, snapshotBase, time.Now())
	return d, nil
}

// Runtime returns gust.RuntimeWasm.
func (d *Driver) Runtime() string { return gust.RuntimeWasm }

// Close closes every runtime, and with them every module and instance.
func (d *Driver) Close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, rt := range d.runtimes {
		if err := rt.r.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close runtime for %d MB: %w", rt.memoryMB, err))
		}
	}
	d.runtimes = nil
	if err := d.cache.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close compilation cache: %w", err))
	}
	return errors.Join(errs...)
}

// runtimeFor returns the runtime for a memory limit, creating it on first
// use.
func (d *Driver) runtimeFor(ctx context.Context, memoryMB int) (*runtime, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, gust.Errorf(gust.EUNAVAILABLE, "wasm driver is closed")
	}
	if rt := d.runtimes[memoryMB]; rt != nil {
		return rt, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(d.cache).
		WithMemoryLimitPages(uint32(memoryMB) * 16).
		WithCloseOnContextDone(true)
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate WASI for %d MB runtime: %w", memoryMB, err)
	}
	host, err := instantiateHost(ctx, r)
	if err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate host functions for %d MB runtime: %w", memoryMB, err)
	}
	rt := &runtime{memoryMB: memoryMB, r: r, wasi: r.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions(), host: host.ExportedFunctionDefinitions()}
	d.runtimes[memoryMB] = rt
	d.log.Debug("wasm runtime created", "memoryMB", memoryMB)
	return rt, nil
}

var wasmMagic = []byte{0, 'a', 's', 'm'}

// snapshotOffReason is why a module loaded with Spec.Snapshot false has no
// snapshot, as SnapshotState words it after "off: ".
const snapshotOffReason = "turned off for this version (snapshot: false in its spec, or it lists secrets, whose values a snapshot file would hold)"

// Load validates and compiles code. Errors are EINVALID and name the
// problem.
func (d *Driver) Load(ctx context.Context, v *gust.Version, code []byte, logs gust.LogSink) (gust.Module, error) {
	spec := v.Spec.WithDefaults()
	if spec.Runtime != gust.RuntimeWasm {
		return nil, gust.Errorf(gust.EINVALID, "wasm driver cannot run runtime %q", spec.Runtime)
	}
	if spec.MemoryMB < 1 || spec.MemoryMB > gust.MaxMemoryMB {
		return nil, gust.Errorf(gust.EINVALID, "invalid memory %d MB: want 1 to %d", spec.MemoryMB, gust.MaxMemoryMB)
	}
	if len(code) < 8 || !bytes.Equal(code[:4], wasmMagic) {
		return nil, gust.Errorf(gust.EINVALID, "not a WebAssembly module (bad magic)")
	}
	if !bytes.Equal(code[4:8], []byte{1, 0, 0, 0}) {
		return nil, gust.Errorf(gust.EINVALID, "unsupported WebAssembly binary version %d (want 1)", uint32(code[4])|uint32(code[5])<<8|uint32(code[6])<<16|uint32(code[7])<<24)
	}
	rt, err := d.runtimeFor(ctx, spec.MemoryMB)
	if err != nil {
		return nil, err
	}
	// Snapshots need a rewrite of the module; when it can be made, only the
	// rewrite is compiled, since it also starts instances normally.
	why := ""
	var lay *layout
	compileCode := code
	switch {
	case d.noSnapshots:
		why = "turned off for the driver"
	case spec.Snapshot != nil && !*spec.Snapshot:
		// The invoker turns snapshots off for a version that lists
		// secrets (a snapshot file would hold their values) and hands the
		// driver a spec without them, so both causes look alike here.
		why = snapshotOffReason
	default:
		var rewritten []byte
		var err error
		if rewritten, lay, err = snapshotModule(code); err != nil {
			why = err.Error()
		} else if !lay.exports[exportHandle] || !lay.exports[exportMalloc] {
			why = "not a gust reactor"
		} else if !lay.exports[exportRestored] {
			why = "module does not export " + exportRestored + " (built with an SDK without snapshot support)"
		} else {
			compileCode = rewritten
		}
	}
	cm, err := rt.r.CompileModule(ctx, compileCode)
	if err != nil && why == "" {
		why = fmt.Sprintf("rewritten module does not compile: %v", err)
		cm, err = rt.r.CompileModule(ctx, code)
	}
	if err != nil {
		return nil, gust.WrapError(gust.EINVALID, err, "invalid WebAssembly module: %v", err)
	}
	shape, importsHost, err := check(cm, rt.wasi, rt.host)
	if err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	cp, err := d.capsFor(ctx, v.Function, spec)
	if err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	m := &module{
		d:        d,
		rt:       rt,
		compiled: cm,
		shape:    shape,
		function: v.Function,
		version:  v.Number,
		spec:     spec,
		logs:     logs,
		limit:    uint64(spec.MemoryMB) << 20,
		caps:     cp,

		importsHost: importsHost,
	}
	if shape == ShapeReactor {
		_, m.abi2 = cm.ExportedFunctions()[exportHandle2]
	}
	if shape == ShapeWAGI {
		why = "a WAGI command module starts a fresh instance for every request"
	}
	if why == "" {
		m.snap = newSnapshotter(d.log, lay, d.snapshotDir, snapshotKey(code, v.Function, spec))
		m.snap.loadExisting(m.limit)
		m.data = lay.data
		m.refillShell()
	} else {
		m.snapOff = why
		level := slog.LevelInfo
		if d.noSnapshots || spec.Snapshot != nil && !*spec.Snapshot {
			level = slog.LevelDebug
		}
		d.log.Log(ctx, level, "wasm snapshot not used; instances start normally", "function", v.Function, "version", v.Number, "reason", why)
	}
	return m, nil
}

// Exports of the reactor ABI.
const (
	exportMalloc = "gust_malloc"
	exportHandle = "gust_handle"
	// exportHandle2 is gust_handle of ABI version 2, whose request also
	// carries the raw path. A guest exports it beside gust_handle, so a
	// host that knows only version 1 still runs it.
	exportHandle2    = "gust_handle_v2"
	exportInitialize = "_initialize"
	exportStart      = "_start"
)

// Shapes a module can have.
const (
	ShapeReactor = "reactor"
	ShapeWAGI    = "wagi"
)

// check tells a module's shape from its exports, refuses imports the
// host does not provide, and reports whether it imports gust's host
// functions.
func check(cm wazero.CompiledModule, wasi, host map[string]api.FunctionDefinition) (shape string, importsHost bool, err error) {
	shape, err = checkExports(cm)
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		defs, what := wasi, "WASI preview 1"
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
		case hostModule:
			defs, what = host, "gust's host module"
			importsHost = true
		default:
			return "", false, gust.Errorf(gust.EINVALID, "module imports function %s.%s: functions may only import %s and %s", mod, name, wasi_snapshot_preview1.ModuleName, hostModule)
		}
		hf, ok := defs[name]
		if !ok {
			return "", false, gust.Errorf(gust.EINVALID, "module imports %s.%s, which %s does not define", mod, name, what)
		}
		if !sameSignature(f, hf) {
			return "", false, gust.Errorf(gust.EINVALID, "module imports %s.%s with signature %s, want %s", mod, name, signature(f), signature(hf))
		}
	}
	if err != nil {
		return "", false, err
	}
	return shape, importsHost, nil
}

func checkExports(cm wazero.CompiledModule) (string, error) {
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		return "", gust.Errorf(gust.EINVALID, "module imports memory %s.%s: a function must define its own memory", mod, name)
	}

	ex := cm.ExportedFunctions()
	malloc, hasMalloc := ex[exportMalloc]
	handle, hasHandle := ex[exportHandle]
	switch {
	case hasMalloc && hasHandle:
		if s := signature(malloc); s != "(i32) -> (i32)" {
			return "", gust.Errorf(gust.EINVALID, "reactor export %s has signature %s, want (i32) -> (i32)", exportMalloc, s)
		}
		if s := signature(handle); s != "(i32, i32) -> (i64)" {
			return "", gust.Errorf(gust.EINVALID, "reactor export %s has signature %s, want (i32, i32) -> (i64)", exportHandle, s)
		}
		if h2, ok := ex[exportHandle2]; ok && signature(h2) != "(i32, i32) -> (i64)" {
			return "", gust.Errorf(gust.EINVALID, "reactor export %s has signature %s, want (i32, i32) -> (i64)", exportHandle2, signature(h2))
		}
		if init, ok := ex[exportInitialize]; ok && signature(init) != "() -> ()" {
			return "", gust.Errorf(gust.EINVALID, "reactor export %s has signature %s, want () -> ()", exportInitialize, signature(init))
		}
		if len(cm.ExportedMemories()) == 0 {
			return "", gust.Errorf(gust.EINVALID, "reactor exports no memory")
		}
		return ShapeReactor, nil
	case hasHandle:
		return "", gust.Errorf(gust.EINVALID, "module exports %s but not %s: a gust reactor needs both", exportHandle, exportMalloc)
	case hasMalloc:
		return "", gust.Errorf(gust.EINVALID, "module exports %s but not %s: a gust reactor needs both", exportMalloc, exportHandle)
	}
	if start, ok := ex[exportStart]; ok {
		if s := signature(start); s != "() -> ()" {
			return "", gust.Errorf(gust.EINVALID, "WASI command export %s has signature %s, want () -> ()", exportStart, s)
		}
		return ShapeWAGI, nil
	}
	return "", gust.Errorf(gust.EINVALID, "module exports neither %s+%s (a gust reactor) nor %s (a WASI command)", exportHandle, exportMalloc, exportStart)
}

func sameSignature(a, b api.FunctionDefinition) bool {
	return bytes.Equal(a.ParamTypes(), b.ParamTypes()) && bytes.Equal(a.ResultTypes(), b.ResultTypes())
}

func signature(f api.FunctionDefinition) string {
	return "(" + typeList(f.ParamTypes()) + ") -> (" + typeList(f.ResultTypes()) + ")"
}

func typeList(ts []api.ValueType) string {
	var b bytes.Buffer
	for i, t := range ts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	return b.String()
}
