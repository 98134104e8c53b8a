package process

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// wrapperScript runs first in every instance, as root when gust is root.
// Its environment is PATH alone, so nothing the function declares can
// steer a privileged program (LD_PRELOAD and the like). It waits on fd 3
// until gust has put it in its cgroup, builds the mounts (mode "ns"),
// drops to the function's user with setpriv, and hands over to a second,
// unprivileged shell that reads the function's environment from fd 4 (not
// through /proc: after the switch of user it may no longer open its own
// /proc/self/fd) and
// execs the function, which then runs as pid 1 of its pid namespace.
//
// Arguments: mode tmpMB task runtime uid setpriv -- argv...
const wrapperScript = `set -e
read -r go <&3 || exit 125
exec 3<&-
[ "$go" = go ] || exit 125
mode=$1 tmpmb=$2 task=$3 rt=$4 uid=$5 setpriv=$6
shift 7
if [ "$mode" = ns ]; then
	mount --make-rprivate /
	exec 5<"$task"
	[ "$rt" = - ] || exec 6<"$rt"
	mount -t tmpfs -o "size=${tmpmb}m,mode=1777,nosuid,nodev" gust-tmp /tmp
	mkdir -p ` + sandboxTaskRoot + `
	mount -c --bind /proc/self/fd/5 ` + sandboxTaskRoot + `
	mount -c -o remount,bind,ro,nosuid,nodev ` + sandboxTaskRoot + `
	if [ "$rt" != - ]; then
		mkdir -p ` + sandboxRuntimeDir + `
		mount -c --bind /proc/self/fd/6 ` + sandboxRuntimeDir + `
		mount -c -o remount,bind,ro,nosuid,nodev ` + sandboxRuntimeDir + `
	fi
	exec 5<&- 6<&-
	mount -t proc -o nosuid,nodev,noexec proc /proc
	task=` + sandboxTaskRoot + `
fi
cd "$task"
set -- /bin/sh -c 'unset PWD OLDPWD; eval "$(cat <&4)"; exec 4<&-; exec "$@"' function "$@"
if [ "$setpriv" = - ]; then exec "$@"; fi
exec "$setpriv" --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
`

// sandbox is what isolation this machine allows, decided once by New.
type sandbox struct {
	namespaces bool   // mount, pid, ipc and uts namespaces with the mounts above
	setpriv    string // path of setpriv; "" when instances run as gust's own user
	cg         *cgroups
	tmpMB      int
	pidsMax    int
	notes      []string // protections that could not be applied, and why
}

func (s *sandbox) paths(task, runtimeDir, instTmp string) (string, string, string) {
	if s.namespaces {
		return sandboxTaskRoot, sandboxRuntimeDir, sandboxTmp
	}
	return task, runtimeDir, instTmp
}

// newSandbox probes what works here: it starts a real sandboxed /bin/true
// the way every instance will be started.
func newSandbox(cfg Config, workDir string) *sandbox {
	s := &sandbox{tmpMB: cfg.TmpMB, pidsMax: cfg.PidsMax}
	if cfg.NoSandbox {
		s.notes = append(s.notes, "sandbox turned off by configuration: functions run as gust's user, with gust's view of the file system and no memory or pid limit")
		return s
	}
	if os.Geteuid() != 0 {
		s.notes = append(s.notes, "gust is not root: functions run as gust's own user, without namespaces or cgroups")
		return s
	}
	if p, err := exec.LookPath("setpriv"); err == nil {
		s.setpriv = p
	} else {
		s.notes = append(s.notes, "setpriv (util-linux) not found: functions run as root, without namespaces; install util-linux")
	}
	if _, err := exec.LookPath("mount"); err != nil || s.setpriv == "" {
		s.notes = append(s.notes, "mount or setpriv (util-linux) not found: no namespaces, private /tmp or read-only code")
	} else {
		s.namespaces = true
		if err := s.probe(workDir); err != nil {
			s.namespaces = false
			s.notes = append(s.notes, fmt.Sprintf("namespaces unavailable (%v): functions share gust's mount, pid, ipc and uts namespaces and the host's /tmp", err))
		}
	}
	if cg, err := setupCgroups(); err != nil {
		s.notes = append(s.notes, fmt.Sprintf("no cgroup for memory and pid limits (%v): memory is limited with RLIMIT_AS instead, pids not at all", err))
	} else {
		s.cg = cg
	}
	if s.setpriv != "" && !s.namespaces {
		s.notes = append(s.notes, "without a mount namespace the function's user must be able to reach the code directory on the host")
	}
	return s
}

func (s *sandbox) probe(workDir string) error {
	dir := filepath.Join(workDir, "probe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	p, err := s.start(ctx, startSpec{
		name: "probe", argv: []string{"/bin/true"}, taskRoot: dir, memoryMB: 64,
		uid: 65534, stdout: &out, stderr: &out,
	})
	if err != nil {
		return err
	}
	<-p.exited
	p.cleanup()
	if p.exitCode() != 0 {
		return fmt.Errorf("probe exited with %s: %s", p.state, strings.TrimSpace(out.String()))
	}
	return nil
}

// start starts one instance process, stopped at its gate until it is in
// its cgroup.
func (s *sandbox) start(ctx context.Context, sp startSpec) (*proc, error) {
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("gate pipe: %w", err)
	}
	defer gateR.Close()
	envR, envW, err := os.Pipe()
	if err != nil {
		gateW.Close()
		return nil, fmt.Errorf("env pipe: %w", err)
	}
	defer envR.Close()

	mode, tmp, rt, setpriv := "plain", s.tmpMB, sp.runtimeDir, "-"
	if s.namespaces {
		mode = "ns"
	}
	if rt == "" {
		rt = "-"
	}
	if s.setpriv != "" {
		setpriv = s.setpriv
	}
	args := []string{"/bin/sh", "-c", wrapperScript, "gust-" + sp.name, mode, strconv.Itoa(tmp), sp.taskRoot, rt, strconv.Itoa(sp.uid), setpriv, "--"}
	args = append(args, sp.argv...)
	cmd := &exec.Cmd{
		Path:       "/bin/sh",
		Args:       args,
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Dir:        "/",
		Stdout:     sp.stdout,
		Stderr:     sp.stderr,
		ExtraFiles: []*os.File{gateR, envR},
		// A child that keeps stdout open must not hold up reaping.
		WaitDelay: time.Second,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if s.namespaces {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
	}
	var cg *cgroup
	if s.cg != nil {
		cg, err = s.cg.create(sp.name, sp.memoryMB, s.pidsMax)
		if err != nil {
			gateW.Close()
			envW.Close()
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		gateW.Close()
		envW.Close()
		if cg != nil {
			cg.remove()
		}
		return nil, fmt.Errorf("start %s: %w", sp.argv[0], err)
	}
	p := &proc{cmd: cmd, cg: cg, exited: make(chan struct{})}
	go p.wait()
	// The pipe buffer may be smaller than a large environment: write from
	// a goroutine; the unprivileged shell reads it all once released.
	env := sp.envScript()
	go func() {
		_, _ = envW.Write(env)
		envW.Close()
	}()
	if cg != nil {
		if err := cg.add(cmd.Process.Pid); err != nil {
			gateW.Close()
			p.kill()
			p.cleanup()
			return nil, err
		}
	} else if sp.memoryMB > 0 {
		// No cgroup: bound the address space instead. It is cruder (it
		// counts reservations, not use) but it is a limit.
		lim := &syscall.Rlimit{Cur: uint64(sp.memoryMB) << 20, Max: uint64(sp.memoryMB) << 20}
		_ = prlimit(cmd.Process.Pid, syscall.RLIMIT_AS, lim)
	}
	_, err = gateW.Write([]byte("go\n"))
	gateW.Close()
	if err != nil {
		p.kill()
		p.cleanup()
		return nil, fmt.Errorf("release %s: %w", sp.argv[0], err)
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
}

func (s *sandbox) close() {
	if s.cg != nil {
		s.cg.close()
	}
}
