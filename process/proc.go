package process

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
)

// startSpec is one instance process to start.
type startSpec struct {
	name       string   // unique per live instance; names its cgroup
	argv       []string // relative paths resolve in the task root
	env        map[string]string
	taskRoot   string // extracted code on the host ("" for a pool worker)
	runtimeDir string // gust's runtime clients on the host, or ""
	memoryMB   int
	uid        int
	net        bool // own network namespace (reached through the bridge)
	httpPort   int  // bridge gust's connections to this port in the namespace
	apiPort    int  // bridge the namespace's connections on this port to gust
	pool       bool // a generic worker, specialized later with code
	stdout     io.Writer
	stderr     io.Writer
}

// envList renders the environment for execve, sorted so that it reads
// the same each time.
func (sp startSpec) envList() []string {
	keys := make([]string, 0, len(sp.env))
	for k := range sp.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+sp.env[k])
	}
	return out
}

// proc is a started instance process.
type proc struct {
	cmd    *exec.Cmd
	cg     *cgroup
	exited chan struct{} // closed once the process is reaped
	state  *os.ProcessState
	// helper is set when cmd is the sandbox helper, which exits with the
	// function's code, or 128+signal when the function was killed.
	helper bool
	ctl    *net.UnixConn // control socket to the helper, or nil
	ctlMu  sync.Mutex
}

func (p *proc) wait() {
	_ = p.cmd.Wait()
	p.state = p.cmd.ProcessState
	close(p.exited)
}

// exitCode is the exit code once exited: -1 for a signal or not yet.
func (p *proc) exitCode() int {
	select {
	case <-p.exited:
		return p.state.ExitCode()
	default:
		return -1
	}
}

// describeExit says how the process ended, for error messages.
func (p *proc) describeExit() string {
	select {
	case <-p.exited:
	default:
		return "is still running"
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %s", ws.Signal())
	}
	code := p.state.ExitCode()
	if p.helper && code > 128 && code < 128+65 {
		return fmt.Sprintf("was killed by signal %s", syscall.Signal(code-128))
	}
	return fmt.Sprintf("exited with code %d", code)
}
