package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// worker is a pre-warmed, not yet specialized instance process: a sandbox
// helper in fresh namespaces and a cgroup of its own, with a private /tmp,
// gust's runtime clients mounted and an empty task root, and under it the
// interpreter running gust's runtime client as root with CAP_SETUID and
// CAP_SETGID only, waiting on its Runtime API for the function to become.
type worker struct {
	runtime string
	p       *proc
	api     *runtimeAPI
	bl      *bridgeListener
	stdout  *switchWriter
	stderr  *switchWriter
}

// prewarmSupport reports whether this sandbox can keep pre-warmed
// workers, and why not: a worker is specialized by mounting code into its
// mount namespace and by lowering its cgroup's memory limit, and is
// reached through its own network namespace.
func (s *sandbox) prewarmSupport() error {
	switch {
	case !s.ownUser || !s.namespaces:
		return errors.New("it needs the sandbox's namespaces")
	case !s.network:
		return errors.New("it needs network namespaces")
	case s.cg == nil:
		return errors.New("it needs a memory cgroup")
	}
	fd, err := detachedReadOnly("/")
	if err != nil {
		return fmt.Errorf("it needs detached mounts (Linux 5.12): %w", err)
	}
	unix.Close(fd)
	return nil
}

// startWorker starts a worker of runtime and waits, bounded by
// StartTimeout and ctx, until its runtime client asks to be specialized.
func (d *Driver) startWorker(ctx context.Context, runtime string) (*worker, error) {
	env, argv, err := d.prewarmEnv(runtime)
	if err != nil {
		return nil, err
	}
	if argv[0] == "" {
		return nil, fmt.Errorf("no interpreter for %s", runtime)
	}
	w := &worker{
		runtime: runtime,
		stdout:  &switchWriter{w: &debugLog{log: d.log, runtime: runtime}},
		stderr:  &switchWriter{w: &debugLog{log: d.log, runtime: runtime}},
	}
	w.p, err = d.sb.start(ctx, startSpec{
		name:       fmt.Sprintf("prewarm-%s-%d", runtime, d.nextSeq()),
		argv:       argv,
		env:        env,
		runtimeDir: d.runtimeDir,
		memoryMB:   prewarmWorkerMB,
		net:        true,
		apiPort:    nsAPIPort,
		pool:       true,
		stdout:     w.stdout,
		stderr:     w.stderr,
	})
	if err != nil {
		return nil, err
	}
	// The worker starts at a low CPU priority, so that a refill does not
	// slow the instance whose cold start it follows; specialization
	// restores it. Process-group-wide: the helper and what it forks.
	_ = unix.Setpriority(unix.PRIO_PGRP, w.p.cmd.Process.Pid, min(ownNice()+prewarmNice, 19))
	w.api = newRuntimeAPI("", d.cfg.MaxResponseBytes)
	w.api.prewarmed = true
	w.bl = newBridgeListener(w.p)
	w.api.serve(w.bl)
	timer := time.NewTimer(d.cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-w.api.asked:
		return w, nil
	case <-w.p.exited:
		err = fmt.Errorf("pre-warmed %s worker %s during start", runtime, w.p.describeExit())
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("pre-warmed %s worker not ready within %s", runtime, d.cfg.StartTimeout)
	}
	w.discard()
	return nil, err
}

func (w *worker) alive() bool {
	select {
	case <-w.p.exited:
		return false
	default:
		return true
	}
}

func (w *worker) discard() {
	w.api.close()
	w.p.kill()
	w.p.cleanup()
}

// specialization is what a pre-warmed runtime client becomes: the
// function's whole environment (as a cold-started instance's), its user,
// and its working directory.
type specialization struct {
	Env map[string]string `json:"env"`
	UID int               `json:"uid"`
	Dir string            `json:"dir"`
}

// fromWorker makes the worker w the instance in of module m:
//
//  1. the cgroup's memory limit becomes the function's;
//  2. the worker's output goes to the function's log;
//  3. the helper mounts the code read-only at the task root and becomes
//     the function's user;
//  4. the runtime client gets the specialization (environment, user,
//     directory), becomes the function's user, drops the capabilities it
//     had for that, imports the handler and asks for its first event.
//
// A failure before the runtime client has its specialization is the
// worker's, not the function's: the worker is discarded and retry is
// true, for a plain cold start instead. After it, the result is the
// function's cold start, as from newLambda.
func (m *module) fromWorker(ctx context.Context, in *instance, w *worker) (li *lambdaInstance, retry bool, err error) {
	uid := m.uid
	if err := w.p.cg.setMemory(m.spec.MemoryMB); err != nil {
		w.discard()
		return nil, true, fmt.Errorf("pre-warmed worker: %w", err)
	}
	if err := w.bl.specialize(ctx, m.taskRoot, uid); err != nil {
		w.discard()
		return nil, true, fmt.Errorf("pre-warmed worker: %w", err)
	}
	if err := unix.Setpriority(unix.PRIO_PGRP, w.p.cmd.Process.Pid, ownNice()); err != nil {
		w.discard()
		return nil, true, fmt.Errorf("pre-warmed worker: restore its priority: %w", err)
	}
	in.p = w.p
	in.prewarmed = true
	w.stdout.set(in.out.writer("stdout"))
	w.stderr.set(in.out.writer("stderr"))
	w.api.setFunction(m.function)
	in.cleanup = append(in.cleanup, w.api.close)
	li = &lambdaInstance{instance: in, api: w.api}
	b, err := json.Marshal(specialization{
		Env: m.env(in, m.lambdaVars(ctx, "127.0.0.1:"+strconv.Itoa(nsAPIPort), in)),
		UID: uid,
		Dir: sandboxTaskRoot,
	})
	if err != nil {
		return nil, false, err
	}
	w.api.spec <- b
	return li, false, li.waitReady(ctx)
}

// prewarmNice is how much nicer than gust a worker is until it is
// specialized.
const prewarmNice = 10

// ownNice is gust's nice value, which a cold-started instance inherits.
func ownNice() int {
	// The raw system call answers 20 - nice.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return 20 - prio
}

// debugLog logs what a worker writes before it is any function's (the
// interpreter's own warnings, say) at debug level.
type debugLog struct {
	log     *slog.Logger
	runtime string
}

func (l *debugLog) Write(p []byte) (int, error) {
	if line := bytes.TrimSpace(p); len(line) > 0 {
		l.log.Debug("pre-warmed worker output", "runtime", l.runtime, "text", string(line[:min(len(line), 512)]))
	}
	return len(p), nil
}
