package clustertest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Procs is a NATS JetStream cluster of nats-server processes, each with its
// own client, cluster and monitoring port on 127.0.0.1 and its own store.
// A process cluster is what a test of several gust processes wants under
// -race: embedded servers would carry the race detector's cost on every
// replicated write, while the processes run at full speed.
type Procs struct {
	bin     string
	dir     string
	clients []int
	routes  []int
	monitor []int
	cmds    []*exec.Cmd
	done    []chan struct{}
	logs    []*logBuffer
}

// logBuffer keeps the first 64 KiB a server logs, for a failing test's
// message; the server writes it from exec's copying goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// BuildServer builds nats-server, at the version gust's go.mod requires,
// into a temporary directory and returns its path.
func BuildServer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		t.Fatalf("building nats-server: %v\n%s", err, out)
	}
	return bin
}

// StartProcs runs n clustered nats-server processes of bin and returns once
// every one answers JetStream requests with all n in view. They are stopped
// when the test ends.
func StartProcs(t testing.TB, bin string, n int) *Procs {
	t.Helper()
	p := &Procs{bin: bin, dir: t.TempDir()}
	for range n {
		p.clients = append(p.clients, freePort(t))
		p.routes = append(p.routes, freePort(t))
		p.monitor = append(p.monitor, freePort(t))
	}
	p.cmds = make([]*exec.Cmd, n)
	p.done = make([]chan struct{}, n)
	p.logs = make([]*logBuffer, n)
	for i := range n {
		p.start(t, i)
	}
	for i := range n {
		if err := waitJetStream(p.URL(i), n); err != nil {
			t.Fatalf("nats server %d: %v\n%s", i, err, p.logs[i])
		}
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (p *Procs) start(t testing.TB, i int) {
	t.Helper()
	var routes []string
	for _, r := range p.routes {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", r))
	}
	cmd := exec.Command(p.bin,
		"--name", fmt.Sprintf("nats-%d", i),
		"--addr", "127.0.0.1", "--port", strconv.Itoa(p.clients[i]),
		"--http_port", strconv.Itoa(p.monitor[i]),
		"--jetstream", "--store_dir", filepath.Join(p.dir, fmt.Sprintf("js-%d", i)),
		"--cluster_name", "gust-test",
		"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", p.routes[i]),
		"--routes", strings.Join(routes, ","),
	)
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("nats server %d: %v", i, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmds[i], p.done[i], p.logs[i] = cmd, done, logs
	t.Cleanup(func() { stopProc(cmd, done) })
}

func stopProc(cmd *exec.Cmd, done chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// URL is the client URL of server i.
func (p *Procs) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", p.clients[i]) }

// URLs is every server's client URL, comma-separated, as `--nats` takes it.
func (p *Procs) URLs() string {
	var s []string
	for i := range p.clients {
		s = append(s, p.URL(i))
	}
	return strings.Join(s, ",")
}

// Stop stops server i as an operator would, with SIGTERM (lame duck, then
// exit), and waits for it to exit.
func (p *Procs) Stop(i int) { stopProc(p.cmds[i], p.done[i]) }

// Restart starts server i again on its ports and store, and returns once it
// answers JetStream requests with every server in view.
func (p *Procs) Restart(t testing.TB, i int) {
	t.Helper()
	p.start(t, i)
	if err := waitJetStream(p.URL(i), len(p.clients)); err != nil {
		t.Fatalf("nats server %d after restart: %v\n%s", i, err, p.logs[i])
	}
}

// Healthy reports whether server i's /healthz answers 200: connected to its
// routes and, with JetStream, caught up with its streams' leaders.
func (p *Procs) Healthy(i int) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.monitor[i]))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
