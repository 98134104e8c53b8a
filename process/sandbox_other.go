//go:build !linux

package process

import (
	"context"
	"fmt"
	"os/exec"
	"time"
)

// Outside Linux there is no sandbox: functions run as gust's user, in
// their task root, with a private TMPDIR.
type sandbox struct {
	namespaces bool
	setpriv    string
	cg         *cgroups
	notes      []string
}

type cgroups struct{ v2 bool }

type cgroup struct{}

func (*cgroup) oomKilled() bool { return false }

func (s *sandbox) paths(task, runtimeDir, instTmp string) (string, string, string) {
	return task, runtimeDir, instTmp
}

func newSandbox(cfg Config, workDir string) *sandbox {
	return &sandbox{notes: []string{"no sandbox outside Linux: functions run as gust's user with no memory or pid limit"}}
}

func (s *sandbox) start(ctx context.Context, sp startSpec) (*proc, error) {
	env := make([]string, 0, len(sp.env))
	for k, v := range sp.env {
		env = append(env, k+"="+v)
	}
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
