//go:build !linux

package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"time"
)

// Outside Linux there is no sandbox: functions run as gust's user, in
// their task root, with a private TMPDIR.
type sandbox struct {
	namespaces bool
	network    bool
	ownUser    bool
	cg         *cgroups
	notes      []string
}

// Outside Linux there is no helper and no network namespace to bridge.
const (
	nsHTTPPort = 8080
	nsAPIPort  = 9001
)

// RunSandboxHelperIfRequested returns at once: outside Linux there is no
// sandbox helper.
func RunSandboxHelperIfRequested() {}

func closeConn(c *net.UnixConn) {
	if c != nil {
		_ = c.Close()
	}
}

func (p *proc) dialBridge(ctx context.Context) (net.Conn, error) {
	return nil, errors.New("no bridge outside Linux")
}

func (p *proc) probeBridge(ctx context.Context) (net.Conn, error) {
	return nil, errors.New("no bridge outside Linux")
}

func newBridgeListener(p *proc) net.Listener {
	panic("process: no network namespace outside Linux")
}

type cgroups struct{ v2 bool }

type cgroup struct{}

func (*cgroup) oomKilled() bool { return false }

func (s *sandbox) paths(task, runtimeDir, instTmp string) (string, string, string) {
	return task, runtimeDir, instTmp
}

func newSandbox(cfg Config, workDir string) *sandbox {
	return &sandbox{notes: []string{"no sandbox outside Linux: functions run as gust's user with no memory or pid limit", "functions share one user: any local process can connect to a function's Runtime API or listen on its port on 127.0.0.1, and so take its events (headers, bodies) or answer for it"}}
}

func (s *sandbox) start(ctx context.Context, sp startSpec) (*proc, error) {
	env := sp.envList()
	cmd := exec.Command(sp.argv[0], sp.argv[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = sp.taskRoot, env, sp.stdout, sp.stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", sp.argv[0], err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go p.wait()
	return p, nil
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}

func (p *proc) oomKilled() bool { return false }

func (p *proc) cleanup() {
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.kill()
		<-p.exited
	}
}

func (s *sandbox) close() {}

func (s *sandbox) beginStart() {}

func (s *sandbox) startDone() {}

func (s *sandbox) spareCount() int { return 0 }
