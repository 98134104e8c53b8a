package process

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
)

// startSpec is one instance process to start.
type startSpec struct {
	name       string   // unique per live instance; names its cgroup
	argv       []string // relative paths resolve in the task root
	env        map[string]string
	taskRoot   string // extracted code on the host
	runtimeDir string // gust's runtime clients on the host, or ""
	memoryMB   int
	uid        int
	stdout     io.Writer
	stderr     io.Writer
}

// envScript renders the environment as shell assignments for the
// unprivileged shell that execs the function: the environment never passes
// through a privileged program, nor through a command line that other users
// could read in /proc. Names are checked by gust.Spec.Validate.
func (sp startSpec) envScript() []byte {
	keys := make([]string, 0, len(sp.env))
	for k := range sp.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("export ")
		b.WriteString(k)
		b.WriteString("='")
		b.WriteString(strings.ReplaceAll(sp.env[k], "'", `'\''`))
		b.WriteString("'\n")
	}
	return []byte(b.String())
}

// proc is a started instance process.
type proc struct {
	cmd    *exec.Cmd
	cg     *cgroup
	exited chan struct{} // closed once the process is reaped
	state  *os.ProcessState
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
	return fmt.Sprintf("exited with code %d", p.state.ExitCode())
}
