package wasm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/gustfaas/gust"
)

// reactor is a warm instance of a gust reactor module.
type reactor struct {
	m      *module
	mod    api.Module
	mem    api.Memory
	malloc api.Function
	handle api.Function
	stdout *logWriter
	stderr *logWriter
	stack  [2]uint64 // reused by CallWithStack so a call allocates nothing for it
	// bufPtr and bufCap cache the request buffer gust_malloc last handed
	// out: the ABI keeps it valid until the next gust_malloc, so a warm
	// call whose request fits makes one guest call, not two. Each guest
	// call costs a goroutine handoff in wazero's CloseOnContextDone.
	bufPtr, bufCap uint32
	busy           atomic.Bool
	dead           bool // a call failed; the instance must not run again
	// smem is the memory of an instance made to be restored (nil for a
	// normal start); learn is the snapshot whose hot pages this instance
	// records after its first call (see hotPages), nil once done.
	smem  restorableMemory
	learn *image
	// calls is the context of InvokeTimeout's calls, made on first use
	// (see callContext).
	calls *callContext
}

func (m *module) newReactor(ctx context.Context) (*reactor, error) {
	if img := m.snapImage(); img != nil {
		r, err := m.restore(ctx, img)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, errRestore) {
			return nil, err
		}
		m.d.log.Warn("wasm snapshot restore failed; starting the instance normally", "function", m.function, "version", m.version, "err", err)
	}
	r, err := m.startNormal(ctx)
	if err != nil {
		return nil, err
	}
	if m.snap != nil && m.snap.claim() {
		reason, err := m.snap.capture(ctx, r)
		switch {
		case reason != "":
			m.snap.fail(m.function, m.version, reason)
		case err != nil:
			m.snap.fail(m.function, m.version, "capture failed: "+err.Error())
			// A guest call of the capture may have failed half-way: this
			// instance is suspect, so hand out a fresh one.
			_ = r.mod.Close(ctx)
			return m.startNormal(ctx)
		default:
			m.d.log.Debug("wasm snapshot captured", "function", m.function, "version", m.version, "memoryBytes", r.memSize())
			m.refillShell()
		}
	}
	return r, nil
}

func (m *module) snapImage() *image {
	if m.snap == nil {
		return nil
	}
	return m.snap.ready()
}

// errRestore marks restore failures that are the host's, not the
// function's: the instance then starts normally instead.
var errRestore = errors.New("restore from snapshot")

func (m *module) newShell() *reactor {
	return &reactor{
		m:      m,
		stdout: newLogWriter(m, "stdout", false),
		stderr: newLogWriter(m, "stderr", true),
	}
}

// instantiate creates the wazero instance of r, with no start function: a
// reactor has no _start, and _initialize is the caller's to run or skip.
func (r *reactor) instantiate(ctx context.Context) error {
	m := r.m
	cfg := m.config().
		WithStartFunctions().
		WithStdout(r.stdout).
		WithStderr(r.stderr)
	mod, err := m.rt.r.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		r.stderr.flush()
		return m.callError(ctx, err, 0, r.stderr, "instantiation")
	}
	r.mod = mod
	r.mem = mod.Memory()
	r.malloc = mod.ExportedFunction(exportMalloc)
	if m.abi2 {
		r.handle = mod.ExportedFunction(exportHandle2)
	} else {
		r.handle = mod.ExportedFunction(exportHandle)
	}
	if r.mem == nil || r.malloc == nil || r.handle == nil {
		_ = mod.Close(ctx)
		return gust.Errorf(gust.EFUNCTION, "reactor instance lacks its memory or exports")
	}
	return nil
}

// startNormal starts an instance the ordinary way: data segments (which
// the rewrite for snapshots leaves to the host), then _initialize.
func (m *module) startNormal(ctx context.Context) (*reactor, error) {
	r := m.newShell()
	if err := r.instantiate(ctx); err != nil {
		return nil, err
	}
	for _, seg := range m.data {
		if !r.mem.Write(seg.offset, seg.data) {
			_ = r.mod.Close(ctx)
			return nil, gust.Errorf(gust.EFUNCTION, "data segment of %d bytes at %#x is outside the module's memory", len(seg.data), seg.offset)
		}
	}
	if init := r.mod.ExportedFunction(exportInitialize); init != nil {
		err := init.CallWithStack(ctx, r.stack[:])
		r.stdout.flush()
		r.stderr.flush()
		if err != nil {
			e := m.callError(ctx, err, r.memSize(), r.stderr, "initialization")
			_ = r.mod.Close(ctx)
			return nil, e
		}
	}
	return r, nil
}

// restore starts an instance from a snapshot, in a shell made ahead if
// there is one. Errors wrapping errRestore are the host's; others are the
// function's (its restore hook failed).
func (m *module) restore(ctx context.Context, img *image) (*reactor, error) {
	r := m.takeShell()
	if r == nil {
		var err error
		if r, err = m.newRestoreShell(ctx); err != nil {
			return nil, err
		}
	}
	fail := func(format string, args ...any) error {
		_ = r.mod.Close(ctx)
		return fmt.Errorf("%w: %s", errRestore, fmt.Sprintf(format, args...))
	}
	if err := r.smem.restore(img, r.mem); err != nil {
		return nil, fail("restore memory: %v", err)
	}
	for _, g := range img.globals {
		mg, ok := r.mod.ExportedGlobal(g.export).(api.MutableGlobal)
		if !ok {
			return nil, fail("global %s is not an exported mutable global", g.export)
		}
		mg.Set(g.value)
	}
	if img.randOff >= 0 {
		if err := reseed(r.mem, img.randOff); err != nil {
			return nil, fail("reseed the runtime's generator: %v", err)
		}
	}
	if f := r.mod.ExportedFunction(exportRestored); f != nil {
		err := f.CallWithStack(ctx, r.stack[:])
		r.stdout.flush()
		r.stderr.flush()
		if err != nil {
			e := m.callError(ctx, err, r.memSize(), r.stderr, "restore hook")
			_ = r.mod.Close(ctx)
			return nil, e
		}
	}
	if img.hot.Load() == nil && img.learning.CompareAndSwap(false, true) {
		r.learn = img
	}
	return r, nil
}

// learnHotPages records which pages the instance's restore and first call
// touched, for later restores of the same snapshot to populate up front.
func (r *reactor) learnHotPages(ok bool) {
	img := r.learn
	r.learn = nil
	if !ok {
		// A failed first call is no guide; let another instance learn.
		img.learning.Store(false)
		return
	}
	hot, err := r.smem.touched(img.memSize, r.memSize())
	if err != nil {
		r.m.d.log.Debug("wasm snapshot: cannot tell which pages a first call touches", "function", r.m.function, "version", r.m.version, "err", err)
		return
	}
	if hot == nil {
		return
	}
	img.hot.Store(hot)
	ps := uintptr(os.Getpagesize())
	w, rd := hot.pages(ps)
	r.m.d.log.Debug("wasm snapshot: pages a first call touches", "function", r.m.function, "version", r.m.version, "written", w, "read", rd, "runs", len(hot.write)+len(hot.read))
}

// minRequestBuffer is the smallest request buffer asked of a guest.
const minRequestBuffer = 16 << 10

func (r *reactor) memSize() uint64 {
	if r.mem == nil {
		return 0
	}
	return uint64(r.mem.Size())
}

// MemorySize returns the size of the instance's linear memory in bytes.
func (r *reactor) MemorySize() uint64 { return r.memSize() }

func (r *reactor) Invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	if !r.busy.CompareAndSwap(false, true) {
		return nil, gust.Errorf(gust.EINTERNAL, "instance already in use")
	}
	defer r.busy.Store(false)
	resp, err := r.invokeOnce(ctx, req)
	r.afterCall(ctx.Err() != nil)
	return resp, err
}

// invokeOnce runs req on the instance, which the caller has marked busy.
func (r *reactor) invokeOnce(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	if r.dead {
		return nil, gust.Errorf(gust.EINTERNAL, "instance failed earlier and must be discarded")
	}
	if r.mod.IsClosed() {
		// Closed by an earlier call's deadline after that call had
		// already returned (see afterCall): not this call's timeout.
		r.dead = true
		return nil, gust.Errorf(gust.EINTERNAL, "instance was closed after its last call and must be discarded")
	}
	resp, err := r.invoke(ctx, req)
	if err != nil {
		r.dead = true
	}
	if r.learn != nil {
		r.learnHotPages(err == nil)
	}
	return resp, err
}

// InvokeTimeout runs req as Invoke does, under ctx's values but not its
// cancellation, stopped after timeout. It is what the invoker calls: a
// warm call then makes no context or timer of its own (see callContext).
func (r *reactor) InvokeTimeout(ctx context.Context, timeout time.Duration, req *gust.Request) (*gust.Response, error) {
	if r.m.importsHost {
		// Host functions make outbound requests with the context, which
		// may outlive the call in a transport's bookkeeping: they get a
		// context of their own.
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		return r.Invoke(callCtx, req)
	}
	if !r.busy.CompareAndSwap(false, true) {
		return nil, gust.Errorf(gust.EINTERNAL, "instance already in use")
	}
	defer r.busy.Store(false)
	if r.calls == nil {
		r.calls = newCallContext()
	}
	r.calls.arm(ctx, timeout)
	resp, err := r.invokeOnce(r.calls, req)
	// Only once disarmed can the deadline no longer fire for this call.
	r.afterCall(r.calls.disarm())
	return resp, err
}

// afterCall marks the instance dead if the call's deadline passed before
// the call was over (expired), even though the call returned, or if the
// module was closed. wazero closes the module when the deadline passes,
// from a goroutine of its own, and the guest may have returned just
// before: the call keeps its good response, but the instance must not run
// again, or its next call would fail at once as a timeout it never had.
func (r *reactor) afterCall(expired bool) {
	if expired || r.mod.IsClosed() {
		r.dead = true
	}
}

// Usable reports whether the instance can take another call: not once a
// call failed, nor once a deadline closed it after a call that returned
// well (see afterCall). A pool that asks after a good call discards such an
// instance instead of handing it a request it can only refuse.
func (r *reactor) Usable() bool { return !r.dead && !r.mod.IsClosed() }

func (r *reactor) invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	size, err := requestSize(req, r.m.abi2)
	if err != nil {
		return nil, err
	}
	r.stdout.begin(req.ID)
	r.stderr.begin(req.ID)
	defer r.stdout.flush()
	defer r.stderr.flush()
	ctx = r.m.withCall(ctx, req.ID)

	if size > r.bufCap || r.bufCap == 0 {
		// Ask for headroom so slightly larger requests reuse the buffer.
		want := max(size+size/4, minRequestBuffer)
		r.stack[0] = uint64(want)
		if err := r.malloc.CallWithStack(ctx, r.stack[:]); err != nil {
			return nil, r.m.callError(ctx, err, r.memSize(), r.stderr, "")
		}
		r.bufPtr, r.bufCap = uint32(r.stack[0]), want
	}
	ptr := r.bufPtr
	buf, ok := r.mem.Read(ptr, size)
	if !ok {
		return nil, gust.Errorf(gust.EFUNCTION, "%s returned %d bytes at %#x, outside the guest's memory", exportMalloc, size, ptr)
	}
	encodeRequest(buf, req, r.m.abi2)

	r.stack[0], r.stack[1] = uint64(ptr), uint64(size)
	if err := r.handle.CallWithStack(ctx, r.stack[:]); err != nil {
		return nil, r.m.callError(ctx, err, r.memSize(), r.stderr, "")
	}
	res := r.stack[0]
	respPtr, respLen := uint32(res>>32), uint32(res)
	view, ok := r.mem.Read(respPtr, respLen)
	if !ok {
		return nil, gust.Errorf(gust.EFUNCTION, "%s returned a response of %d bytes at %#x, outside the guest's memory", r.handleName(), respLen, respPtr)
	}
	resp, err := decodeResponse(view)
	if err != nil {
		return nil, gust.WrapError(gust.EFUNCTION, err, "function returned a malformed response: %v", err)
	}
	return resp, nil
}

// handleName is the export r calls for a request.
func (r *reactor) handleName() string {
	if r.m.abi2 {
		return exportHandle2
	}
	return exportHandle
}

func (r *reactor) Close(ctx context.Context) error {
	if r.calls != nil {
		r.calls.stop()
	}
	if r.learn != nil {
		r.learn.learning.Store(false)
		r.learn = nil
	}
	if err := r.mod.Close(ctx); err != nil {
		return fmt.Errorf("close reactor instance of %s v%d: %w", r.m.function, r.m.version, err)
	}
	return nil
}
