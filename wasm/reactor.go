package wasm

import (
	"context"
	"fmt"
	"sync/atomic"

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
	// out: ABI v1 keeps it valid until the next gust_malloc, so a warm
	// call whose request fits makes one guest call, not two. Each guest
	// call costs a goroutine handoff in wazero's CloseOnContextDone.
	bufPtr, bufCap uint32
	busy           atomic.Bool
	dead           bool // a call failed; the instance must not run again
}

func (m *module) newReactor(ctx context.Context) (*reactor, error) {
	r := &reactor{
		m:      m,
		stdout: newLogWriter(m, "stdout", false),
		stderr: newLogWriter(m, "stderr", true),
	}
	cfg := m.config().
		WithStartFunctions(). // a reactor has no _start; _initialize runs below
		WithStdout(r.stdout).
		WithStderr(r.stderr)
	mod, err := m.rt.r.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		r.stderr.flush()
		return nil, m.callError(ctx, err, 0, r.stderr, "instantiation")
	}
	r.mod = mod
	r.mem = mod.Memory()
	r.malloc = mod.ExportedFunction(exportMalloc)
	r.handle = mod.ExportedFunction(exportHandle)
	if r.mem == nil || r.malloc == nil || r.handle == nil {
		_ = mod.Close(ctx)
		return nil, gust.Errorf(gust.EFUNCTION, "reactor instance lacks its memory or exports")
	}
	if init := mod.ExportedFunction(exportInitialize); init != nil {
		err := init.CallWithStack(ctx, r.stack[:])
		r.stdout.flush()
		r.stderr.flush()
		if err != nil {
			e := m.callError(ctx, err, r.memSize(), r.stderr, "initialization")
			_ = mod.Close(ctx)
			return nil, e
		}
	}
	return r, nil
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
	if r.dead {
		return nil, gust.Errorf(gust.EINTERNAL, "instance failed earlier and must be discarded")
	}
	resp, err := r.invoke(ctx, req)
	if err != nil {
		r.dead = true
	}
	return resp, err
}

func (r *reactor) invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	size, err := requestSize(req)
	if err != nil {
		return nil, err
	}
	r.stdout.begin(req.ID)
	r.stderr.begin(req.ID)
	defer r.stdout.flush()
	defer r.stderr.flush()

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
	encodeRequest(buf, req)

	r.stack[0], r.stack[1] = uint64(ptr), uint64(size)
	if err := r.handle.CallWithStack(ctx, r.stack[:]); err != nil {
		return nil, r.m.callError(ctx, err, r.memSize(), r.stderr, "")
	}
	res := r.stack[0]
	respPtr, respLen := uint32(res>>32), uint32(res)
	view, ok := r.mem.Read(respPtr, respLen)
	if !ok {
		return nil, gust.Errorf(gust.EFUNCTION, "%s returned a response of %d bytes at %#x, outside the guest's memory", exportHandle, respLen, respPtr)
	}
	resp, err := decodeResponse(view)
	if err != nil {
		return nil, gust.WrapError(gust.EFUNCTION, err, "function returned a malformed response: %v", err)
	}
	return resp, nil
}

func (r *reactor) Close(ctx context.Context) error {
	if err := r.mod.Close(ctx); err != nil {
		return fmt.Errorf("close reactor instance of %s v%d: %w", r.m.function, r.m.version, err)
	}
	return nil
}
