package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gustfaas/gust"
)

// module is the unpacked code of one version. It implements gust.Module.
type module struct {
	d          *Driver
	function   string
	version    int
	spec       gust.Spec // with defaults
	protocol   string    // gust.ProtocolHTTP or gust.ProtocolLambda
	logs       gust.LogSink
	taskRoot   string
	digest     string
	argv       []string
	runtimeDir string // "" for the process runtime
	uid        int    // the function's user id (see Driver.acquireUID)

	closeOnce sync.Once
}

func (m *module) Shape() string { return m.protocol }

func (m *module) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		m.d.prewarm.unuse(m.spec.Runtime)
		m.d.releaseCode(m.digest)
		m.d.releaseUID(m.function)
	})
	return nil
}

// The life of an instance:
//
//  1. NewInstance prepares what the protocol needs first (a free port for
//     http, a Runtime API server for lambda), then starts the process in
//     its sandbox with a clean environment, or, for python3 and nodejs,
//     specializes a pre-warmed worker (see prewarm).
//  2. It waits until the function is ready (it accepts a TCP connection on
//     $PORT, or it asks the Runtime API for its first event), bounded by
//     Config.StartTimeout and ctx. Exiting, reporting an init error, or not
//     getting ready in time is EFUNCTION; the process is killed.
//  3. Invoke runs requests, warm, until one fails: a timeout (ETIMEOUT),
//     the memory limit (EOOM) or a crash (EFUNCTION). Each of these kills
//     the process group, so the pool's Close finds nothing left but to
//     clean up. A handler error that a lambda runtime reports (EFUNCTION
//     wrapping gust.ErrInstanceHealthy) leaves the process running, and
//     the pool keeps the instance warm.
//  4. Close kills the process group and removes its cgroup and files.
func (m *module) NewInstance(ctx context.Context) (gust.Instance, error) {
	in := &instance{
		m:    m,
		name: fmt.Sprintf("%s-%d-%d", m.function, m.version, m.d.nextSeq()),
		out:  newOutputs(m.logs, m.function, m.version),
	}
	if err := m.d.track(in); err != nil {
		return nil, err
	}
	m.d.sb.beginStart()
	var (
		inst gust.Instance
		err  error
	)
	if m.protocol == gust.ProtocolLambda {
		inst, err = m.newLambda(ctx, in)
	} else {
		inst, err = m.newHTTP(ctx, in)
	}
	if err != nil {
		in.coldStartOver()
		in.stop()
		return nil, err
	}
	// An instance started ahead of calls (provisioned) has no first
	// invocation to end its cold start.
	time.AfterFunc(spareRefillDelay, in.coldStartOver)
	return inst, nil
}

// spareRefillDelay bounds how long a cold start counts as under way for
// the spare sandboxes' refill (see sandbox.beginStart) once its instance
// is ready: a refill waits for it to end, or this long.
const spareRefillDelay = time.Second

// coldStartOver tells the spare sandboxes' refill, once, that this
// instance's cold start is over: it failed, or its first invocation (the
// one that waited for it) has returned.
func (in *instance) coldStartOver() {
	in.coldOnce.Do(in.m.d.sb.startDone)
}

// env is the whole environment of an instance: the spec's variables, the
// defaults below unless the spec sets them, and the protocol's variables,
// which always win.
func (m *module) env(in *instance, protocolVars map[string]string) map[string]string {
	task, rt, tmp := m.d.sb.paths(m.taskRoot, m.runtimeDir, in.tmpDir)
	env := map[string]string{
		"PATH":   sandboxPath,
		"HOME":   tmp,
		"TMPDIR": tmp,
		"LANG":   "C.UTF-8",
		"TZ":     "UTC",
	}
	for k, v := range m.spec.Env {
		env[k] = v
	}
	env["LAMBDA_TASK_ROOT"] = task
	if m.runtimeDir != "" {
		env["LAMBDA_RUNTIME_DIR"] = rt
	}
	switch m.spec.Runtime {
	case gust.RuntimePython3:
		env["PYTHONUNBUFFERED"] = "1"
		env["PYTHONDONTWRITEBYTECODE"] = "1"
	}
	for k, v := range protocolVars {
		env[k] = v
	}
	return env
}

// lambdaVars are the Lambda runtime's variables. ctx is the start's: a
// start ahead of invocations (gust.Provisioned) is Lambda's
// provisioned-concurrency initialization.
func (m *module) lambdaVars(ctx context.Context, api string, in *instance) map[string]string {
	initType := "on-demand"
	if gust.Provisioned(ctx) {
		initType = "provisioned-concurrency"
	}
	return map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          api,
		"AWS_LAMBDA_FUNCTION_NAME":        m.function,
		"AWS_LAMBDA_FUNCTION_VERSION":     strconv.Itoa(m.version),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(m.spec.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + m.function,
		"AWS_LAMBDA_LOG_STREAM_NAME":      in.name,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  initType,
		"_HANDLER":                        m.spec.Handler,
	}
}

// instance is what both protocols share: one sandboxed process.
type instance struct {
	m      *module
	name   string
	out    *outputs
	tmpDir string // per-instance /tmp when there is no mount namespace
	p      *proc
	// prewarmed is set when the instance is a specialized pre-warmed
	// worker rather than a process started for it.
	prewarmed bool

	stopOnce sync.Once
	coldOnce sync.Once
	cleanup  []func()
}

// ownNet reports whether the module's instances get a network namespace
// of their own.
func (m *module) ownNet() bool {
	return m.d.sb.network && !m.spec.Egress
}

// start starts the process with the given protocol variables. In a
// network namespace of its own, httpPort and apiPort are the ports the
// helper bridges (see bridge_linux.go).
func (in *instance) start(ctx context.Context, protocolVars map[string]string, httpPort, apiPort int) error {
	m := in.m
	uid := m.uid
	if !m.d.sb.namespaces {
		in.tmpDir = filepath.Join(m.d.tmpRoot, in.name)
		if err := os.MkdirAll(in.tmpDir, 0o700); err != nil {
			return fmt.Errorf("instance tmp dir: %w", err)
		}
		if m.d.sb.ownUser {
			if err := os.Chown(in.tmpDir, uid, uid); err != nil {
				return fmt.Errorf("instance tmp dir: %w", err)
			}
		}
	}
	p, err := m.d.sb.start(ctx, startSpec{
		name:       in.name,
		argv:       m.argv,
		env:        m.env(in, protocolVars),
		taskRoot:   m.taskRoot,
		runtimeDir: m.runtimeDir,
		memoryMB:   m.spec.MemoryMB,
		uid:        uid,
		net:        m.ownNet(),
		httpPort:   httpPort,
		apiPort:    apiPort,
		stdout:     in.out.writer("stdout"),
		stderr:     in.out.writer("stderr"),
	})
	if err != nil {
		return gust.WrapError(gust.EFUNCTION, err, "cannot start function %s", m.function)
	}
	in.p = p
	return nil
}

// PID is the process id of the instance's wrapper on the host (the
// function itself once it has exec'd), for tests and diagnostics.
func (in *instance) PID() int {
	if in.p == nil || in.p.cmd.Process == nil {
		return 0
	}
	return in.p.cmd.Process.Pid
}

// stop kills the process and frees what the instance holds. It is safe to
// call more than once and from several goroutines.
func (in *instance) stop() {
	in.stopOnce.Do(func() {
		in.coldStartOver()
		if in.p != nil {
			in.p.kill()
			in.p.cleanup()
		}
		for i := len(in.cleanup) - 1; i >= 0; i-- {
			in.cleanup[i]()
		}
		if in.tmpDir != "" {
			_ = os.RemoveAll(in.tmpDir)
		}
		in.m.d.untrack(in)
	})
}

// exitedError explains a process that failed while gust expected it to
// serve: EOOM if its cgroup saw the memory limit hit, EFUNCTION otherwise,
// with the last line it wrote to stderr. phase says when ("during start").
// The process is killed if it still runs.
func (in *instance) exitedError(phase string) error {
	m := in.m
	// The kernel may report the exit a moment after the broken connection.
	select {
	case <-in.p.exited:
	case <-time.After(time.Second):
	}
	if in.p.oomKilled() || (in.p.cg == nil && in.outOfMemoryMessage()) {
		in.p.kill()
		return gust.Errorf(gust.EOOM, "function exceeded its memory limit of %d MB", m.spec.MemoryMB)
	}
	how := in.p.describeExit()
	if how == "is still running" {
		how = "broke the connection"
	}
	in.p.kill()
	msg := fmt.Sprintf("function %s %s", how, phase)
	if detail := in.out.lastLine(); detail != "" {
		return gust.Errorf(gust.EFUNCTION, "%s: %s", msg, detail)
	}
	return gust.Errorf(gust.EFUNCTION, "%s", msg)
}

// outOfMemoryMessage tells, without a cgroup to ask, whether the function
// died of RLIMIT_AS by what runtimes print when an allocation fails.
func (in *instance) outOfMemoryMessage() bool {
	for _, s := range []string{"MemoryError", "out of memory", "Cannot allocate memory", "heap out of memory"} {
		if in.out.tailContains(s) {
			return true
		}
	}
	return false
}

// ctxError is the error of an invocation or start whose context ended:
// ETIMEOUT for a deadline, EUNAVAILABLE for a cancellation. The process is
// killed either way: it is in an unknown state.
func (in *instance) ctxError(ctx context.Context, what string) error {
	in.p.kill()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if what == "" {
			return gust.WrapError(gust.ETIMEOUT, ctx.Err(), "function timed out after %s", in.m.spec.Timeout)
		}
		return gust.WrapError(gust.ETIMEOUT, ctx.Err(), "function %s timed out", what)
	}
	return gust.WrapError(gust.EUNAVAILABLE, ctx.Err(), "invocation canceled")
}
