package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Paths a sandboxed instance sees. The instance's /tmp is a tmpfs of its
// own; its code and gust's runtime clients are bind-mounted read-only into
// it, so that no directory of the host has to be reachable by the
// function's user (gust's data dir is mode 0700).
const (
	sandboxTaskRoot   = "/tmp/task"
	sandboxRuntimeDir = "/tmp/runtime"
	sandboxTmp        = "/tmp"
)

// sandbox is what isolation this machine allows, decided once by New.
type sandbox struct {
	namespaces bool // mount, pid, ipc and uts namespaces with the mounts of helperMounts
	network    bool // a network namespace per instance (unless its spec allows egress)
	ownUser    bool // instances run as unprivileged users (gust is root)
	cg         *cgroups
	tmpMB      int
	pidsMax    int
	codeRoot   string   // every instance's code lies under it (see helperPrep)
	runtimeDir string   // gust's runtime clients
	notes      []string // protections that could not be applied, and why

	spares   chan *spare   // helpers started ahead (nil: none kept)
	quiet    chan struct{} // a cold start is over: see startDone
	spareSeq atomic.Int64  // names the spares' cgroups
	closing  chan struct{} // closed by close
	filled   chan struct{} // closed once fillSpares has returned

	// A spare being prepared is stopped (SIGSTOP) while any cold start
	// is under way: see beginStart.
	startsMu  sync.Mutex
	starts    int   // cold starts under way
	preparing *proc // the spare being prepared, or nil
	paused    bool  // preparing is stopped
	// pausedAt is when preparing was last stopped; pausedFor how long it
	// was stopped before that. Its preparation's time limit leaves both out.
	pausedAt  time.Time
	pausedFor time.Duration
}

func (s *sandbox) paths(task, runtimeDir, instTmp string) (string, string, string) {
	if s.namespaces {
		return sandboxTaskRoot, sandboxRuntimeDir, sandboxTmp
	}
	return task, runtimeDir, instTmp
}

// helperExe is what the driver re-executes as the sandbox helper: the
// running binary itself, so nothing extra has to be installed.
const helperExe = "/proc/self/exe"

// newSandbox probes what works here: it starts a real sandboxed /bin/true
// the way every instance will be started.
func newSandbox(cfg Config, workDir string) *sandbox {
	s := &sandbox{
		tmpMB: cfg.TmpMB, pidsMax: cfg.PidsMax,
		codeRoot: filepath.Join(workDir, "code"), runtimeDir: filepath.Join(workDir, "runtime"),
		closing: make(chan struct{}), filled: make(chan struct{}), quiet: make(chan struct{}, 1),
	}
	if cfg.NoSandbox {
		s.notes = append(s.notes, "sandbox turned off by configuration: functions run as gust's user, with gust's view of the file system, its network and no memory or pid limit", sharedUserNote)
		return s
	}
	if os.Geteuid() != 0 {
		s.notes = append(s.notes, "gust is not root: functions run as gust's own user, without namespaces, network isolation or cgroups", sharedUserNote)
		return s
	}
	if cg, err := setupCgroups(cfg.Logger); err != nil {
		s.notes = append(s.notes, fmt.Sprintf("no cgroup for memory and pid limits (%v): memory is limited with RLIMIT_AS instead, pids not at all", err))
	} else {
		s.cg = cg
	}
	s.ownUser = true
	s.namespaces, s.network = true, true
	if err := s.probe(workDir); err != nil {
		s.network = false
		if err2 := s.probe(workDir); err2 != nil {
			s.namespaces = false
			s.notes = append(s.notes, fmt.Sprintf("namespaces unavailable (%v): functions share gust's mount, pid, ipc, uts and network namespaces and the host's /tmp", err2))
			if err3 := s.probe(workDir); err3 != nil {
				s.ownUser = false
				s.notes = append(s.notes, fmt.Sprintf("the sandbox helper cannot start (%v): functions run as gust's own user", err3), sharedUserNote)
			}
		} else {
			s.notes = append(s.notes, fmt.Sprintf("no network namespace (%v): a function can open connections to any address, gust's gateway and NATS on 127.0.0.1 included", err))
		}
	}
	if s.ownUser && !s.namespaces {
		s.notes = append(s.notes, "without a mount namespace the function's user must be able to reach the code directory on the host")
	}
	if s.ownUser && cfg.SpareSandboxes > 0 {
		s.spares = make(chan *spare, cfg.SpareSandboxes-1)
		go s.fillSpares()
	}
	return s
}

// sharedUserNote says what running functions as gust's user costs: gust
// admits to a function's Runtime API, and proxies to its $PORT, only
// sockets of the function's user, which is then everyone's.
const sharedUserNote = "functions share one user: any process of gust's user, another function included, can connect to a function's Runtime API or listen on its port on 127.0.0.1, and so take its events (headers, bodies) or answer for it"

func (s *sandbox) probe(workDir string) error {
	// Under the code root, as every instance's code.
	dir := filepath.Join(s.codeRoot, ".probe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	p, err := s.start(ctx, startSpec{
		name: "probe", argv: []string{"/bin/true"}, taskRoot: dir, memoryMB: 64,
		uid: 65534, net: s.network, stdout: &out, stderr: &out,
	})
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	<-p.exited
	p.cleanup()
	if p.exitCode() != 0 {
		return fmt.Errorf("probe %s: %s", p.describeExit(), strings.TrimSpace(out.String()))
	}
	return nil
}

// spare is a sandbox helper started ahead of need and prepared: its
// process exists in fresh namespaces and a cgroup of its own, the Go
// runtime of the re-executed binary has initialized, its private /tmp,
// /proc and empty task root are mounted, its loopback is up and its
// Runtime API bridge listens (see prepare in helper_linux.go). It waits
// for its function's config on fd 3. Taking a spare leaves setting its
// memory limit, mounting the code, dropping privileges and starting the
// function on the cold path. A spare becomes one instance and is never
// returned.
type spare struct {
	p      *proc
	cfgW   *os.File
	stdout *switchWriter
	stderr *switchWriter
	net    bool
}

// switchWriter lets a spare's output go to the instance it becomes.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *switchWriter) set(to io.Writer) {
	w.mu.Lock()
	w.w = to
	w.mu.Unlock()
}

func (w *switchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	to := w.w
	w.mu.Unlock()
	if to == nil {
		return len(p), nil
	}
	return to.Write(p)
}

// prestart starts a helper in fresh namespaces (a network namespace too
// when net), puts it in cgroup cg (nil: none) and releases its gate with
// the preparation. A spare prepared in the background (background set)
// starts spareNice nicer than gust and is the one being prepared (see
// beginStart) from its exec on, until prestartSpare has it ready.
func (s *sandbox) prestart(net bool, cg *cgroup, background bool) (*spare, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("config pipe: %w", err)
	}
	defer cfgR.Close()
	ctlGust, ctlChild, err := controlPair()
	if err != nil {
		cfgW.Close()
		return nil, err
	}
	defer ctlChild.Close()
	sp := &spare{cfgW: cfgW, stdout: &switchWriter{}, stderr: &switchWriter{}, net: net}
	cmd := &exec.Cmd{
		Path: helperExe,
		Args: []string{"gust-sandbox", helperArg},
		// The helper's own environment holds nothing the function
		// declares: it runs privileged, and LD_PRELOAD and the like must
		// not steer it. The function's environment travels in the config.
		Env:        []string{"PATH=" + sandboxPath},
		Dir:        "/",
		Stdout:     sp.stdout,
		Stderr:     sp.stderr,
		ExtraFiles: []*os.File{cfgR, ctlChild},
		// A child that keeps stdout open must not hold up reaping.
		WaitDelay: time.Second,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if s.namespaces {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
		if net {
			cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNET
		}
	}
	if err := cmd.Start(); err != nil {
		cfgW.Close()
		closeConn(ctlGust)
		return nil, fmt.Errorf("start the sandbox helper: %w", err)
	}
	sp.p = &proc{cmd: cmd, exited: make(chan struct{}), helper: true, ctl: ctlGust, cg: cg}
	go sp.p.wait()
	if background {
		// Process-group-wide: the helper's threads, and the function's
		// start once it is taken, which restores gust's own (take).
		_ = unix.Setpriority(unix.PRIO_PGRP, cmd.Process.Pid, min(ownNice()+spareNice, 19))
		// Its Go runtime starts at once: stopped from here on if a cold
		// start is under way.
		s.setPreparing(sp.p)
	}
	if cg != nil {
		if err := cg.add(cmd.Process.Pid); err != nil {
			sp.discard()
			return nil, err
		}
	}
	prep, err := json.Marshal(helperPrep{
		Mounts: s.namespaces, TmpMB: s.tmpMB, CodeRoot: s.codeRoot, Runtime: s.runtimeDir,
		Net: net, API: nsAPIPort,
	})
	if err == nil {
		_, err = cfgW.Write(prep)
	}
	if err != nil {
		sp.discard()
		return nil, fmt.Errorf("release the sandbox helper: %w", err)
	}
	return sp, nil
}

// waitReady waits, up to limit, for the helper to report that it has
// prepared. With paused, the time the helper was stopped (see
// beginStart) does not count.
func (sp *spare) waitReady(limit time.Duration, paused func() time.Duration) error {
	c := sp.p.ctl
	start := time.Now()
	var msg []byte
	fd := -1
	var err error
	for {
		deadline := start.Add(limit)
		if paused != nil {
			deadline = deadline.Add(paused())
		}
		_ = c.SetReadDeadline(deadline)
		msg, fd, err = recvMsg(c)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || paused == nil || !time.Now().Before(start.Add(limit+paused())) {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	if fd >= 0 {
		unix.Close(fd)
	}
	if err == nil && (len(msg) != 1 || msg[0] != msgReady) {
		err = fmt.Errorf("unexpected message %q", msg)
	}
	if err != nil {
		select {
		case <-sp.p.exited:
			return fmt.Errorf("the sandbox helper %s while preparing", sp.p.describeExit())
		case <-time.After(time.Second):
		}
		return fmt.Errorf("the sandbox helper did not prepare: %w", err)
	}
	return nil
}

func (sp *spare) discard() {
	sp.cfgW.Close()
	sp.p.kill()
	sp.p.cleanup()
}

// fillSpares keeps Config.SpareSandboxes helpers ready, one at a time,
// until the sandbox closes.
func (s *sandbox) fillSpares() {
	defer close(s.filled)
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-s.closing:
			return
		default:
		}
		sp, err := s.prestartSpare()
		if err != nil {
			select {
			case <-time.After(backoff):
			case <-s.closing:
				return
			}
			if backoff < 5*time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 100 * time.Millisecond
		select {
		case s.spares <- sp:
			continue
		default:
		}
		// Full: the next place frees up when a cold start takes a spare.
		// Preparing the next one then would take CPU from that start
		// (on a busy machine, twice as long), so it waits until the start
		// and its first invocation are over (startDone), or
		// spareRefillDelay at most (an instance started ahead of calls).
		// A signal left from an earlier start does not count.
		select {
		case <-s.quiet:
		default:
		}
		select {
		case s.spares <- sp:
		case <-s.closing:
			sp.discard()
			return
		}
		select {
		case <-s.quiet:
		case <-time.After(spareRefillDelay):
		case <-s.closing:
			return
		}
	}
}

// spareMB is a spare's memory limit until it is taken: the helper at its
// gate needs a few MB.
const spareMB = 64

// spareNice is how much nicer than gust a spare is until it is taken, so
// that refilling after a cold start does not slow that start down.
const spareNice = 10

// beginStart tells the spare refill that a cold start has begun; each
// call is paired with one startDone. Until no cold start is under way, a
// spare being prepared is stopped with SIGSTOP: preparing one is a Go
// runtime's start and a dozen mounts and system calls, about as much
// work as the cold start itself, and on two cores running it beside the
// start, even at nice 10, makes the start's page faults, wake-ups and
// TLB flushes dearer on a virtual machine (on the 2-core test machine
// under load, a Go lambda function's cold start took up to 1.5× as long
// with it beside it). A stopped helper holds nothing a cold start needs. A burst of
// cold starts thus finds no spare refilled until it is over, as a spare
// prepared beside it would have taken the same CPU from it.
func (s *sandbox) beginStart() {
	s.startsMu.Lock()
	s.starts++
	s.pauseLocked()
	s.startsMu.Unlock()
}

// startDone tells the spare refill that a cold start has ended, ready or
// not.
func (s *sandbox) startDone() {
	s.startsMu.Lock()
	if s.starts > 0 {
		s.starts--
	}
	if s.starts == 0 && s.paused && s.preparing != nil {
		s.resumeLocked()
	}
	s.startsMu.Unlock()
	select {
	case s.quiet <- struct{}{}:
	default:
	}
}

// pauseLocked stops the spare being prepared if a cold start is under
// way. startsMu is held.
func (s *sandbox) pauseLocked() {
	if s.starts > 0 && !s.paused && s.preparing != nil {
		s.signalPreparingLocked(unix.SIGSTOP)
		s.paused, s.pausedAt = true, time.Now()
	}
}

// resumeLocked lets the stopped spare go on. startsMu is held.
func (s *sandbox) resumeLocked() {
	s.signalPreparingLocked(unix.SIGCONT)
	s.paused = false
	s.pausedFor += time.Since(s.pausedAt)
}

// signalPreparingLocked signals the process group of the spare being
// prepared (the helper is its leader), unless the helper has been reaped:
// its id may then be another process's. startsMu is held.
func (s *sandbox) signalPreparingLocked(sig unix.Signal) {
	select {
	case <-s.preparing.exited:
		return
	default:
	}
	_ = unix.Kill(-s.preparing.cmd.Process.Pid, sig)
}

// pausedTime is how long the spare being prepared has been stopped.
func (s *sandbox) pausedTime() time.Duration {
	s.startsMu.Lock()
	defer s.startsMu.Unlock()
	d := s.pausedFor
	if s.paused {
		d += time.Since(s.pausedAt)
	}
	return d
}

// setPreparing records the spare being prepared (nil once it is ready or
// given up), stopping it at once if a cold start is under way, or killing
// it if the sandbox is closing.
func (s *sandbox) setPreparing(p *proc) {
	s.startsMu.Lock()
	defer s.startsMu.Unlock()
	if p == nil && s.paused && s.preparing != nil {
		s.resumeLocked()
	}
	s.preparing, s.paused, s.pausedFor = p, false, 0
	if p != nil {
		select {
		case <-s.closing:
			p.kill()
			return
		default:
		}
	}
	s.pauseLocked()
}

// killPreparing kills the spare being prepared, so that close does not
// wait for a stopped one.
func (s *sandbox) killPreparing() {
	s.startsMu.Lock()
	defer s.startsMu.Unlock()
	if s.preparing != nil {
		s.preparing.kill()
	}
}

// spareReadyTimeout bounds a spare's preparation.
const spareReadyTimeout = 10 * time.Second

// prestartSpare starts a spare in a cgroup of its own, if the sandbox
// has cgroups (joining one is off the cold path then), and waits until it
// has prepared.
func (s *sandbox) prestartSpare() (*spare, error) {
	var cg *cgroup
	if s.cg != nil {
		var err error
		if cg, err = s.cg.create(fmt.Sprintf("spare-%d", s.spareSeq.Add(1)), spareMB, s.pidsMax); err != nil {
			return nil, err
		}
	}
	sp, err := s.prestart(s.network, cg, true)
	if err != nil {
		s.setPreparing(nil)
		if cg != nil {
			cg.remove()
		}
		return nil, err
	}
	err = sp.waitReady(spareReadyTimeout, s.pausedTime)
	s.setPreparing(nil)
	if err != nil {
		sp.discard()
		return nil, err
	}
	return sp, nil
}

// spareCount is how many spares wait ready, for tests and benchmarks.
func (s *sandbox) spareCount() int { return len(s.spares) }

// takeSpare returns a live spare whose network matches, or nil.
func (s *sandbox) takeSpare(net bool) *spare {
	if s.spares == nil || net != s.network {
		return nil
	}
	for {
		select {
		case sp := <-s.spares:
			select {
			case <-sp.p.exited:
				sp.discard()
				continue
			default:
				return sp
			}
		default:
			return nil
		}
	}
}

// start starts one instance process. Sandboxed, it is the helper
// (re-executed gust, a spare if one is ready), held at its gate until it
// is in its cgroup; the helper then starts the function. Without
// privileges it is the function itself.
func (s *sandbox) start(ctx context.Context, sp startSpec) (*proc, error) {
	if !s.ownUser {
		return s.startPlain(sp)
	}
	hc := helperConfig{
		Runtime: sp.runtimeDir != "" && s.namespaces,
		UID:     sp.uid, Argv: sp.argv, Env: sp.envList(), Dir: sp.taskRoot,
		HTTP: sp.httpPort, API: sp.net && sp.apiPort > 0, Pool: sp.pool,
	}
	if !sp.pool {
		hc.Task = sp.taskRoot
	}
	if s.namespaces {
		hc.Dir = sandboxTaskRoot
		if sp.pool {
			hc.Dir = sandboxTmp
		}
	}
	if s.cg == nil {
		// No cgroup: the helper bounds the function's address space
		// instead. It is cruder (it counts reservations, not use) but it
		// is a limit.
		hc.AddressSpaceMB = sp.memoryMB
	}
	cfgJSON, err := json.Marshal(hc)
	if err != nil {
		return nil, err
	}
	h := s.takeSpare(sp.net)
	if h != nil {
		// A spare waits in a cgroup of its own already: joining one is
		// slow (milliseconds on v1), changing its limit is not.
		err := unix.Setpriority(unix.PRIO_PGRP, h.p.cmd.Process.Pid, ownNice())
		if err == nil && h.p.cg != nil {
			err = h.p.cg.setMemory(sp.memoryMB)
		}
		if err != nil {
			h.discard()
			h = nil
		}
	}
	fresh := h == nil
	if fresh {
		var cg *cgroup
		if s.cg != nil {
			if cg, err = s.cg.create(sp.name, sp.memoryMB, s.pidsMax); err != nil {
				return nil, err
			}
		}
		if h, err = s.prestart(sp.net, cg, false); err != nil {
			if cg != nil {
				cg.remove()
			}
			return nil, err
		}
	}
	h.stdout.set(sp.stdout)
	h.stderr.set(sp.stderr)
	p := h.p
	// The pipe buffer may be smaller than a large environment: the helper
	// reads while this writes.
	_, err = h.cfgW.Write(cfgJSON)
	h.cfgW.Close()
	if err == nil && fresh {
		// The helper prepares, reports it and reads the config; the
		// report must not be left for whoever reads the control socket
		// next.
		err = h.waitReady(spareReadyTimeout, nil)
	}
	if err != nil {
		p.kill()
		p.cleanup()
		return nil, fmt.Errorf("release %s: %w", sp.argv[0], err)
	}
	return p, nil
}

// startPlain runs the function directly as gust's own user: no helper,
// no namespaces, nothing to drop.
func (s *sandbox) startPlain(sp startSpec) (*proc, error) {
	name := sp.argv[0]
	if !strings.Contains(name, "/") {
		p, err := lookPath(name, sp.envList())
		if err != nil {
			return nil, err
		}
		name = p
	} else if !filepath.IsAbs(name) {
		name = filepath.Join(sp.taskRoot, name)
	}
	cmd := &exec.Cmd{
		Path: name, Args: sp.argv, Env: sp.envList(), Dir: sp.taskRoot,
		Stdout: sp.stdout, Stderr: sp.stderr, WaitDelay: time.Second,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", sp.argv[0], err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go p.wait()
	if sp.memoryMB > 0 {
		lim := &syscall.Rlimit{Cur: uint64(sp.memoryMB) << 20, Max: uint64(sp.memoryMB) << 20}
		_ = prlimit(cmd.Process.Pid, syscall.RLIMIT_AS, lim)
	}
	return p, nil
}

func prlimit(pid int, resource int, lim *syscall.Rlimit) error {
	return unix.Prlimit(pid, resource, &unix.Rlimit{Cur: lim.Cur, Max: lim.Max}, nil)
}

// kill kills the instance's process group, then whatever is left in its
// cgroup. With a pid namespace the kernel also kills every process in it
// once its pid 1 dies.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.cmd.Process.Kill()
	}
	if p.cg != nil {
		p.cg.killAll()
	}
}

// oomKilled reports whether the instance died of its memory limit.
func (p *proc) oomKilled() bool {
	if p.cg != nil {
		return p.cg.oomKilled()
	}
	return false
}

// cleanup removes the cgroup once the process is gone.
func (p *proc) cleanup() {
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.kill()
		<-p.exited
	}
	if p.cg != nil {
		p.cg.remove()
	}
	closeConn(p.ctl)
}

func (s *sandbox) close() {
	close(s.closing)
	if s.spares != nil {
		s.killPreparing()
		<-s.filled
		for {
			select {
			case sp := <-s.spares:
				sp.discard()
				continue
			default:
			}
			break
		}
	}
	if s.cg != nil {
		s.cg.close()
	}
}
