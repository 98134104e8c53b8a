package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// helperArg is the hidden first argument that turns the gust binary (or the
// process package's test binary) into the sandbox helper.
const helperArg = "__sandbox"

// Fixed ports inside an instance's own network namespace: nothing else
// listens there, so they need no picking.
const (
	nsHTTPPort = 8080
	nsAPIPort  = 9001
)

// The helper reads two JSON documents on fd 3, a pipe from gust: first a
// helperPrep, once gust has put it in its cgroup (that arrival is the
// gate: nothing of the helper's own runs before it), then, when an
// instance takes the helper, a helperConfig. Between the two the helper
// builds everything that does not depend on the function (see prepare)
// and says so on the control socket (msgReady), so that a spare helper
// waits fully built and a cold start only mounts the code, drops
// privileges and starts the function.
type helperPrep struct {
	Mounts   bool   `json:"mounts"`   // build the private /tmp and /proc, an empty task root
	TmpMB    int    `json:"tmpMB"`    // size of the private /tmp
	CodeRoot string `json:"codeRoot"` // host directory under which every Task lies
	Runtime  string `json:"runtime"`  // host directory of the runtime clients, or ""
	Net      bool   `json:"net"`      // own network namespace: bring lo up
	API      int    `json:"apiPort"`  // listen here for the Runtime API bridge, or 0
}

// helperConfig is the function a helper starts.
type helperConfig struct {
	Task    string   `json:"task"`    // host directory of the code, under CodeRoot ("" for a pool worker)
	Runtime bool     `json:"runtime"` // mount the runtime clients too
	UID     int      `json:"uid"`     // user the function runs as; 0 keeps gust's user
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Dir     string   `json:"dir"`
	HTTP    int      `json:"httpPort"` // bridge gust's connections to this port, or 0
	API     bool     `json:"api"`      // bridge the prepared Runtime API listener to gust
	Pool    bool     `json:"pool"`     // stay privileged until specialized with code
	// AddressSpaceMB bounds the function's RLIMIT_AS when no cgroup
	// bounds its memory; 0 for none.
	AddressSpaceMB int `json:"addressSpaceMB"`
}

// Control messages on the helper's fd 4 (a SOCK_SEQPACKET socket pair).
// Each carries at most one file descriptor.
const (
	msgConn        = 'c' // a connection to bridge (fd attached), either way
	msgSpecialize  = 's' // + uid: mount the attached code dir at the task root, become uid
	msgSpecialized = 'k' // the helper's answer: done ("k") or failed ("k" + reason)
	msgReady       = 'r' // the helper has prepared and waits for its function
	msgWaitConn    = 'w' // as msgConn, but wait (bounded) for the function to listen
)

// init runs the helper as early as the binary allows: before the
// initialization of packages that this one does not import (in the gust
// binary, most of them), and in any binary that embeds the driver, test
// binaries of other packages included.
func init() { RunSandboxHelperIfRequested() }

// RunSandboxHelperIfRequested turns this process into the sandbox helper
// when it was started as one (argument "__sandbox"), and never returns
// then. Otherwise it returns at once. The gust binary calls it first thing
// in main, and the process package's tests from TestMain, because the
// driver starts every sandboxed instance by re-executing /proc/self/exe.
func RunSandboxHelperIfRequested() {
	if len(os.Args) < 2 || os.Args[1] != helperArg {
		return
	}
	code, err := runHelper()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gust sandbox: %v\n", err)
		if code == 0 {
			code = 125
		}
	}
	os.Exit(code)
}

// runHelper is the sandbox helper. It runs as root in the instance's fresh
// namespaces and cgroup. Released by gust (the first document on fd 3),
// it prepares what every instance needs (prepare), reports ready and,
// perhaps much later as a spare, reads its function (the second
// document), mounts its code, starts it as an unprivileged user with no
// capabilities and no_new_privs, then drops its own privileges and stays
// as the instance's init: it reaps orphans, hands gust the sockets of
// connections between gust and the namespace's loopback, and exits with
// the function's status.
func runHelper() (int, error) {
	// Capability bounding set and no_new_privs are per thread, and the
	// function is forked from this one.
	runtime.LockOSThread()
	cfgFile := os.NewFile(3, "config")
	if cfgFile == nil {
		return 125, errors.New("no config on fd 3")
	}
	dec := json.NewDecoder(io.LimitReader(cfgFile, 16<<20))
	var prep helperPrep
	if err := dec.Decode(&prep); err != nil {
		// gust gave up on the helper before releasing the gate.
		return 125, fmt.Errorf("read preparation: %w", err)
	}
	ctl := controlConn()
	ps, err := prepare(prep)
	if err != nil {
		return 125, err
	}
	if ctl != nil {
		if err := sendMsg(ctl, []byte{msgReady}, -1); err != nil {
			return 125, fmt.Errorf("report ready: %w", err)
		}
	}
	var cfg helperConfig
	err = dec.Decode(&cfg)
	cfgFile.Close()
	if err != nil {
		// A spare discarded unused, or gust gave up on the start.
		return 125, fmt.Errorf("read config: %w", err)
	}
	if len(cfg.Argv) == 0 {
		return 125, errors.New("no command")
	}
	if err := ps.specialize(prep, cfg); err != nil {
		return 125, err
	}
	apiLn := ps.apiLn
	if !cfg.API && apiLn != nil {
		apiLn.Close()
		apiLn = nil
	}
	// prepare left CAP_SETUID and CAP_SETGID in the bounding set. A
	// pre-warmed worker's runtime client starts before anyone knows which
	// function, and so which user, it will become: it starts as root with
	// these two only, to become that user itself at specialization (which
	// clears them), and no_new_privs keeps it from ever gaining a
	// capability again. Until then only gust's runtime client runs in it:
	// the function's code is not even mounted. Every process starts with
	// an empty bounding set: an interpreter cannot empty its own once it
	// has become its function's user (that takes CAP_SETPCAP), so a
	// worker gets its two through the inheritable set instead, which
	// root's exec grants whatever the bounding set (see
	// workerCapabilities).
	if cfg.Pool {
		if err := workerCapabilities(); err != nil {
			return 125, err
		}
	} else if cfg.UID > 0 {
		for _, c := range []int{unix.CAP_SETUID, unix.CAP_SETGID} {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return 125, fmt.Errorf("drop capability %d: %w", c, err)
			}
		}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 125, err
	}
	attr := &syscall.ProcAttr{
		Dir:   cfg.Dir,
		Env:   cfg.Env,
		Files: []uintptr{devnull.Fd(), 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	switch {
	case cfg.Pool:
		attr.Sys.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	case cfg.UID > 0:
		// Dropping every uid to non-zero clears the permitted and
		// effective capabilities on exec; the bounding set and
		// no_new_privs above keep them from coming back.
		attr.Sys.Credential = &syscall.Credential{Uid: uint32(cfg.UID), Gid: uint32(cfg.UID), Groups: []uint32{}}
	}
	path := cfg.Argv[0]
	if !hasSlash(path) {
		path, err = lookPath(path, cfg.Env)
		if err != nil {
			return 127, err
		}
	}
	// An http function bridged through the helper is ready when it
	// listens: have the kernel say when (see listen_linux.go). Where it
	// cannot, the helper polls.
	var listens chan struct{}
	notifyFd := -1
	if cfg.HTTP > 0 && !cfg.Pool && ctl != nil {
		if fd, err := notifyListens(); err == nil {
			notifyFd, listens = fd, make(chan struct{}, 1)
		}
	}
	child, err := syscall.ForkExec(path, cfg.Argv, attr)
	devnull.Close()
	if err != nil {
		return 126, fmt.Errorf("start %s: %w", cfg.Argv[0], err)
	}
	if notifyFd >= 0 {
		go watchListens(notifyFd, listens)
	}
	if cfg.AddressSpaceMB > 0 {
		// Set on the function, not the helper: the Go runtime reserves
		// more address space than a small limit allows.
		lim := uint64(cfg.AddressSpaceMB) << 20
		_ = unix.Prlimit(child, unix.RLIMIT_AS, &unix.Rlimit{Cur: lim, Max: lim}, nil)
	}
	// The function, not its helper, is the one to go when the cgroup
	// runs out of memory. Lowering the score needs the privileges this
	// process is about to drop.
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)
	if cfg.UID > 0 && !cfg.Pool {
		if err := dropPrivileges(cfg.UID); err != nil {
			_ = syscall.Kill(child, syscall.SIGKILL)
			return 125, err
		}
		dieWithGust()
	}
	if ctl != nil {
		h := &helper{cfg: cfg, mounts: prep.Mounts, ctl: ctl, listens: listens, child: child}
		// Always read the control socket, if only to see gust go.
		go h.serveControl()
		if apiLn != nil {
			go h.bridgeAPI(apiLn)
		}
	}
	return reap(child), nil
}

// dieWithGust re-arms the helper's parent-death signal, which the kernel
// clears whenever a process's credentials change (dropPrivileges): without
// it a helper that had become its function's user outlived a gust killed
// with SIGKILL, and so did its function, as a user gust hands out again.
// The signal follows the thread of gust that started the helper; gust's
// threads only end with gust (it never leaves a goroutine locked to one
// to exit). Should gust have died before this call, the helper still sees
// the control socket close (see serveControl).
func dieWithGust() {
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
}

// gustGone ends the instance once gust's end of the control socket has
// closed: gust is gone, and nothing will ever use or stop the instance.
// As the pid namespace's init the helper takes every process of the
// instance with it; without that namespace the function follows by its
// own parent-death signal, and what it forked is left to the next
// driver's reaping of gust's cgroups.
func (h *helper) gustGone() {
	_ = syscall.Kill(h.child, syscall.SIGKILL)
	os.Exit(128 + int(syscall.SIGKILL))
}

// restrictCapabilities sets no_new_privs and empties the capability
// bounding set of this thread but for keep, so that what it execs as root
// has keep at most (and as any other user, nothing).
func restrictCapabilities(keep ...int) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	last := lastCap()
next:
	for c := 0; c <= last; c++ {
		for _, k := range keep {
			if c == k {
				continue next
			}
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	return nil
}

// workerCapabilities has this thread pass CAP_SETUID and CAP_SETGID, and
// nothing else, to what it execs as root, with an empty bounding set. A
// root exec's permitted set is (inheritable ∩ file inheritable, all for
// root) ∪ (file permitted ∩ bounding set): with the two in the
// inheritable set and none in the bounding set, the interpreter runs with
// these two and a bounding set that is already empty when it becomes its
// function's user. A capability enters the inheritable set only while it
// is in the bounding set, hence the order. The inheritable set outlives
// the change of user: python's runtime client empties it (capset), node
// cannot, and no_new_privs keeps it inert there (an exec never gains a
// capability).
func workerCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	for _, c := range []int{unix.CAP_SETUID, unix.CAP_SETGID} {
		data[c/32].Inheritable |= 1 << (c % 32)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set inheritable capabilities: %w", err)
	}
	for _, c := range []int{unix.CAP_SETUID, unix.CAP_SETGID} {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	return nil
}

func hasSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// lookPath finds a command in the function's PATH, as a shell would.
func lookPath(name string, env []string) (string, error) {
	pathVar := sandboxPath
	for _, kv := range env {
		if len(kv) > 5 && kv[:5] == "PATH=" {
			pathVar = kv[5:]
		}
	}
	start := 0
	for i := 0; i <= len(pathVar); i++ {
		if i == len(pathVar) || pathVar[i] == ':' {
			dir := pathVar[start:i]
			start = i + 1
			if dir == "" {
				continue
			}
			p := dir + "/" + name
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s: command not found", name)
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	n, err := strconv.Atoi(string(trimSpace(b)))
	if err != nil {
		return 63
	}
	return n
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// dropPrivileges makes every thread of the helper the function's user.
// Go applies setresuid and friends to all threads.
func dropPrivileges(uid int) error {
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(uid, uid, uid); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	return nil
}

// prepared is what a helper built before it knew its function.
type prepared struct {
	codeRoot int          // O_PATH descriptor of the host's code root, or -1
	runtime  int          // O_PATH descriptor of the runtime clients, or -1
	apiLn    net.Listener // the Runtime API bridge's listener, or nil
}

// prepare builds what every instance needs, whatever its function: a
// private tmpfs /tmp (also over the host's other world-writable
// directories) with an empty task root in it, a /proc of the instance's
// own pid namespace, the loopback interface up, and the Runtime API
// bridge's listener. The host's code root and runtime clients are opened
// first, before the tmpfs hides them (the host paths may lie under
// /tmp), for specialize to mount from.
func prepare(prep helperPrep) (*prepared, error) {
	ps := &prepared{codeRoot: -1, runtime: -1}
	// The bounding set and no_new_privs of this (locked) thread, which
	// forks the function: what it may ever gain on exec is at most these
	// two, dropped too at start unless it is a pre-warmed worker. The
	// helper's own capabilities, which it needs until it starts the
	// function, are not affected.
	if err := restrictCapabilities(unix.CAP_SETUID, unix.CAP_SETGID); err != nil {
		return nil, err
	}
	if prep.Mounts {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return nil, fmt.Errorf("make / private: %w", err)
		}
		var err error
		if prep.CodeRoot != "" {
			if ps.codeRoot, err = unix.Open(prep.CodeRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				return nil, fmt.Errorf("open code root: %w", err)
			}
		}
		if prep.Runtime != "" {
			if ps.runtime, err = unix.Open(prep.Runtime, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				return nil, fmt.Errorf("open runtime dir: %w", err)
			}
		}
		if err := unix.Mount("gust-tmp", sandboxTmp, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%dm,mode=1777", prep.TmpMB)); err != nil {
			return nil, fmt.Errorf("mount /tmp: %w", err)
		}
		for _, dir := range []string{"/var/tmp", "/dev/shm", "/run/lock"} {
			if st, err := os.Lstat(dir); err == nil && st.IsDir() {
				if err := unix.Mount(sandboxTmp, dir, "", unix.MS_BIND, ""); err != nil {
					return nil, fmt.Errorf("cover %s: %w", dir, err)
				}
			}
		}
		if err := os.Mkdir(sandboxTaskRoot, 0o755); err != nil {
			return nil, err
		}
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return nil, fmt.Errorf("mount /proc: %w", err)
		}
	}
	if prep.Net {
		if err := loopbackUp(); err != nil {
			return nil, fmt.Errorf("bring up loopback: %w", err)
		}
		if prep.API > 0 {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(prep.API))
			if err != nil {
				return nil, fmt.Errorf("runtime API bridge: %w", err)
			}
			ps.apiLn = ln
		}
	}
	return ps, nil
}

// specialize mounts the function's code read-only at the task root, and
// the runtime clients if it needs them. Without mounts the function finds
// its code on the host.
func (ps *prepared) specialize(prep helperPrep, cfg helperConfig) error {
	defer func() {
		for _, fd := range []int{ps.codeRoot, ps.runtime} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	if !prep.Mounts {
		return nil
	}
	if cfg.Task != "" {
		rel, err := filepath.Rel(prep.CodeRoot, cfg.Task)
		if err != nil || ps.codeRoot < 0 || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			return fmt.Errorf("code dir %s is not under %s", cfg.Task, prep.CodeRoot)
		}
		fd, err := unix.Openat(ps.codeRoot, rel, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open code dir: %w", err)
		}
		err = bindReadOnly(fd, sandboxTaskRoot)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	if cfg.Runtime {
		if ps.runtime < 0 {
			return errors.New("no runtime clients to mount")
		}
		if err := os.Mkdir(sandboxRuntimeDir, 0o755); err != nil {
			return err
		}
		if err := bindReadOnly(ps.runtime, sandboxRuntimeDir); err != nil {
			return err
		}
	}
	return nil
}

// bindReadOnly bind-mounts the directory open at fd onto target, read-only.
func bindReadOnly(fd int, target string) error {
	src := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", target, err)
	}
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// loopbackUp sets lo up: a fresh network namespace has it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// reap waits for the function, reaping every orphan that the pid
// namespace hands to its init on the way, and returns the exit code the
// helper exits with: the function's, or 128+signal.
func reap(child int) int {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return 125
		}
		if pid != child {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// helper is the running helper's bridge to gust.
type helper struct {
	cfg     helperConfig
	mounts  bool
	ctl     *net.UnixConn
	listens chan struct{} // the function called listen (nil: not watched)
	child   int           // the function's pid
}

// controlConn is the control socket gust passed as fd 4, if any.
func controlConn() *net.UnixConn {
	f := os.NewFile(4, "control")
	if f == nil {
		return nil
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil
	}
	uc, _ := c.(*net.UnixConn)
	return uc
}

// serveControl handles gust's messages: connections to bridge to the
// function's $PORT, and a pool worker's specialization. Only gust holds
// the other end of the socket, and it closes it only once the instance
// has exited: the end of the socket is gust's end, and the instance's.
func (h *helper) serveControl() {
	for {
		msg, fd, err := recvMsg(h.ctl)
		if err != nil {
			h.gustGone()
			return
		}
		switch {
		case len(msg) > 0 && msg[0] == msgConn && fd >= 0:
			go bridgeToPort(fd, h.cfg.HTTP, 0, nil)
		case len(msg) > 0 && msg[0] == msgWaitConn && fd >= 0:
			go bridgeToPort(fd, h.cfg.HTTP, startProbeWait, h.listens)
		case len(msg) > 0 && msg[0] == msgSpecialize:
			reply := []byte{msgSpecialized}
			uid, err := strconv.Atoi(string(msg[1:]))
			if err == nil {
				err = h.specialize(fd, uid)
			}
			if err != nil {
				reply = append(reply, err.Error()...)
			}
			if fd >= 0 {
				unix.Close(fd)
			}
			if err := sendMsg(h.ctl, reply, -1); err != nil {
				return
			}
		default:
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
}

// specialize attaches a pool worker's code read-only at the task root and
// makes the helper the function's user uid, giving up the privileges it
// kept only for this. The runtime client becomes uid itself, once gust
// answers its request to be specialized.
func (h *helper) specialize(fd, uid int) error {
	if !h.cfg.Pool {
		return errors.New("not a pool worker")
	}
	h.cfg.Pool = false
	h.cfg.UID = uid
	if fd >= 0 && h.mounts {
		// fd is a detached mount made read-only by gust (see
		// detachedReadOnly); the remount keeps it so whatever it was.
		if err := unix.MoveMount(fd, "", unix.AT_FDCWD, sandboxTaskRoot, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("attach the code at %s: %w", sandboxTaskRoot, err)
		}
		if err := unix.Mount("", sandboxTaskRoot, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", sandboxTaskRoot, err)
		}
	}
	if uid > 0 {
		if err := dropPrivileges(uid); err != nil {
			return err
		}
		dieWithGust()
	}
	return nil
}

// bridgeToPort dials the function's port for gust, which asked on the
// socket fd, and answers there one byte: 1 with the connected socket
// attached (gust then talks to the function directly; the helper copies
// nothing), or 0 when the function does not listen (yet). With wait > 0
// a refused connect is retried for up to wait as the function starts:
// after each listen it calls, if listens tells of them, else at short
// intervals.
func bridgeToPort(fd, port int, wait time.Duration, listens <-chan struct{}) {
	f := os.NewFile(uintptr(fd), "conn")
	outer, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return
	}
	defer outer.Close()
	reply, ok := outer.(*net.UnixConn)
	if !ok {
		return
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var inner net.Conn
	if wait > 0 {
		inner, err = dialWhenListening(addr, wait, listens)
	} else {
		inner, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		_ = sendMsg(reply, []byte{0}, -1)
		return
	}
	defer inner.Close()
	_ = sendConn(reply, []byte{1}, inner)
}

// sendConn sends msg with the socket of c attached, without changing its
// mode (as File would).
func sendConn(to *net.UnixConn, msg []byte, c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var sendErr error
	if err := raw.Control(func(fd uintptr) { sendErr = sendMsg(to, msg, int(fd)) }); err != nil {
		return err
	}
	return sendErr
}

// bridgeAPI accepts the function's connections to the Runtime API port
// and hands each to gust, whose Runtime API then serves the function
// directly.
func (h *helper) bridgeAPI(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		err = sendConn(h.ctl, []byte{msgConn}, c)
		c.Close()
		if err != nil {
			// gust is gone.
			return
		}
	}
}

// sendMsg sends one control message with an optional file descriptor.
func sendMsg(c *net.UnixConn, msg []byte, fd int) error {
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	_, _, err := c.WriteMsgUnix(msg, oob, nil)
	return err
}

// recvMsg receives one control message and the descriptor it carries, or
// -1. io.EOF once the other side is gone.
func recvMsg(c *net.UnixConn) ([]byte, int, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, -1, err
	}
	fd := -1
	if oobn > 0 {
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					continue
				}
				for _, x := range fds {
					if fd < 0 {
						fd = x
						unix.CloseOnExec(x)
					} else {
						unix.Close(x)
					}
				}
			}
		}
	}
	if n == 0 && fd < 0 {
		return nil, -1, io.EOF
	}
	return buf[:n], fd, nil
}
