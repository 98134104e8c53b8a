//go:build linux

package process

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// The environment that turns the test binary into a node for
// TestInstancesDieWithKilledNode: the zip of an http function to run.
const (
	orphanCodeEnv = "GUST_PROCESS_TEST_NODE_CODE"
	orphanDirEnv  = "GUST_PROCESS_TEST_NODE_DIR"
)

func init() {
	if zip := os.Getenv(orphanCodeEnv); zip != "" {
		os.Exit(runTestNode(zip, os.Getenv(orphanDirEnv)))
	}
}

// nodeReport is what the test node tells its parent once its instances
// run: its driver's base cgroups, one instance's cgroup, and every process
// in its cgroups.
type nodeReport struct {
	Bases    []string `json:"bases"`
	Instance []string `json:"instance"`
	PIDs     []int    `json:"pids"`
	// Prewarmed says the python3 instance was a specialized pre-warmed
	// worker (whose helper changes users later, at specialization).
	Prewarmed bool `json:"prewarmed"`
}

// runTestNode starts a driver with an http instance and, where the
// machine has python3, a python3 one (from a pre-warmed worker where the
// sandbox allows), reports them on stdout and waits to be killed.
func runTestNode(zipPath, dir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "test node:", err)
		return 1
	}
	code, err := os.ReadFile(zipPath)
	if err != nil {
		return fail(err)
	}
	d, err := New(Config{WorkDir: dir, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return fail(err)
	}
	if d.sb.cg == nil {
		return fail(fmt.Errorf("no cgroups: %v", d.Isolation().Notes))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var insts []*instance
	startOne := func(name string, spec gust.Spec, code []byte) error {
		var rd gust.Driver
		for _, x := range d.Drivers() {
			if x.Runtime() == spec.Runtime {
				rd = x
			}
		}
		m, err := rd.Load(ctx, &gust.Version{Function: name, Number: 1, Spec: spec}, code, nil)
		if err != nil {
			return err
		}
		gi, err := m.NewInstance(ctx)
		if err != nil {
			return err
		}
		if _, err := gi.Invoke(ctx, &gust.Request{Method: "GET", Path: "/", Header: map[string][]string{}}); err != nil {
			return err
		}
		switch in := gi.(type) {
		case *httpInstance:
			insts = append(insts, in.instance)
		case *lambdaInstance:
			insts = append(insts, in.instance)
		}
		return nil
	}
	if err := startOne("orphan-http", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolHTTP}, code); err != nil {
		return fail(err)
	}
	if d.cfg.Python != "" {
		py := []byte("def handler(event, context):\n    return 'ok'\n")
		var buf bytes.Buffer
		if err := zipBytes(&buf, "handler.py", py); err != nil {
			return fail(err)
		}
		if d.prewarm != nil {
			// Let the worker come up, so the instance is a specialized
			// pre-warmed one.
			d.prewarm.use(gust.RuntimePython3)
			for i := 0; i < 400 && d.PrewarmStats().Ready[gust.RuntimePython3] < 1; i++ {
				time.Sleep(25 * time.Millisecond)
			}
		}
		if err := startOne("orphan-py", gust.Spec{Runtime: gust.RuntimePython3, Handler: "handler.handler"}, buf.Bytes()); err != nil {
			return fail(err)
		}
	}
	g := insts[0].p.cg
	rep := nodeReport{Bases: []string{d.sb.cg.memBase}, Instance: []string{g.mem}}
	if d.sb.cg.pidBase != "" && d.sb.cg.pidBase != d.sb.cg.memBase {
		rep.Bases = append(rep.Bases, d.sb.cg.pidBase)
		rep.Instance = append(rep.Instance, g.pids)
	}
	for _, b := range rep.Bases {
		rep.PIDs = append(rep.PIDs, treeTasks(b)...)
	}
	rep.Prewarmed = len(insts) > 1 && insts[1].prewarmed
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return fail(err)
	}
	time.Sleep(time.Minute)
	return 0
}

// A node killed with SIGKILL takes its instances with it: each
// instance's helper, dropped to the function's user or not, dies with
// gust (by its parent-death signal, re-armed after it changed users, or
// when gust's end of its control socket closes), and the pid namespace
// with it. What might still be left in the dead node's cgroups (here a
// process the test put there) is killed by the next driver to start,
// which removes those cgroups and says so in its log.
func TestInstancesDieWithKilledNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the sandbox and its cgroups")
	}
	zip := filepath.Join(t.TempDir(), "code.zip")
	if err := os.WriteFile(zip, httpFn(t), 0o600); err != nil {
		t.Fatal(err)
	}
	node := exec.Command(os.Args[0], "-test.run=^$")
	node.Env = append(os.Environ(), orphanCodeEnv+"="+zip, orphanDirEnv+"="+t.TempDir())
	var stderr bytes.Buffer
	node.Stderr = &stderr
	out, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = node.Process.Kill()
			_ = node.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		_ = node.Process.Kill()
		_ = node.Wait()
		killed = true
		t.Fatalf("test node: %v\n%s", err, stderr.String())
	}
	var rep nodeReport
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	if len(rep.PIDs) < 2 {
		t.Fatalf("the node reports processes %v, want its instances' helpers and functions", rep.PIDs)
	}
	t.Logf("the node's processes: %v (python3 instance pre-warmed: %v)", rep.PIDs, rep.Prewarmed)
	starts := map[int]uint64{}
	for _, pid := range rep.PIDs {
		if st, ok := procStat(pid); ok {
			starts[pid] = st.start
		}
	}

	// A process of no instance, in an instance's cgroup: only the reaper
	// can end it.
	stray := exec.Command("sleep", "60")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	strayDone := make(chan struct{})
	go func() { _ = stray.Wait(); close(strayDone) }()
	t.Cleanup(func() { _ = stray.Process.Kill(); <-strayDone })
	for _, dir := range rep.Instance {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(stray.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}

	if err := node.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = node.Wait()
	killed = true

	// (b) The instances die with the node, before anything reaps them.
	alive := func() []int {
		var left []int
		for pid, start := range starts {
			if st, ok := procStat(pid); ok && st.start == start {
				left = append(left, pid)
			}
		}
		return left
	}
	for i := 0; i < 500 && len(alive()) > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if left := alive(); len(left) > 0 {
		t.Fatalf("processes %v of the killed node's instances still run 5s after it died", left)
	}
	select {
	case <-strayDone:
		t.Fatal("the stray process died with the node: the test cannot tell whether the reaper works")
	default:
	}

	// (a) The next driver reaps what is left and removes the cgroups.
	var logBuf syncBuffer
	d, err := New(Config{WorkDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logBuf, nil)), SpareSandboxes: -1, Prewarm: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	select {
	case <-strayDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the stray process in the dead node's cgroup still runs after a new driver started")
	}
	for _, b := range rep.Bases {
		if _, err := os.Stat(b); !os.IsNotExist(err) {
			t.Errorf("the dead node's cgroup %s is still there (%v)", b, err)
		}
	}
	if s := logBuf.String(); !strings.Contains(s, "reaped the instances of a gust process that is gone") || !strings.Contains(s, rep.Bases[0]) {
		t.Errorf("the driver did not log what it reaped:\n%s", s)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// zipBytes writes a zip of one file.
func zipBytes(w io.Writer, name string, data []byte) error {
	zw := zip.NewWriter(w)
	f, err := zw.Create(name)
	if err == nil {
		_, err = f.Write(data)
	}
	if err != nil {
		return err
	}
	return zw.Close()
}

// The reaper tells the cgroups of live gust processes from those of
// gone ones by the owner in their names: PID and start time, or (older
// names) PID and whether the processes in it are its children.
func TestReapStaleOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroups")
	}
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	own, err := ownCgroups()
	if err != nil {
		t.Fatal(err)
	}
	// A parent of the test's own, so that nothing else is reaped.
	var parent string
	v2 := false
	if m, ok := mounts["pids"]; ok {
		parent = filepath.Join(m, own["pids"], fmt.Sprintf("reaptest-%d", os.Getpid()))
	} else if m, ok := mounts[""]; ok {
		parent, v2 = filepath.Join(m, own[""], fmt.Sprintf("reaptest-%d", os.Getpid())), true
	} else {
		t.Skip("no pids or v2 cgroup hierarchy")
	}
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Skipf("cannot create a cgroup: %v", err)
	}
	t.Cleanup(func() { reapTree(parent, v2) })

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := gone.Process.Pid
	self := os.Getpid()
	selfStat, _ := procStat(self)
	parentPID := os.Getppid()

	cases := []struct {
		name    string
		stray   bool // a process (the test's child) in it
		reaped  bool
		comment string
	}{
		{fmt.Sprintf("gust-%d-%d", deadPID, selfStat.start), true, true, "owner not running"},
		{fmt.Sprintf("gust-%d-%d", self, selfStat.start), true, false, "owner alive"},
		{fmt.Sprintf("gust-%d-%d", self, selfStat.start+1), true, true, "PID reused by another process"},
		{fmt.Sprintf("gust-%d", deadPID), true, true, "older name, owner not running"},
		{fmt.Sprintf("gust-%d", self), true, false, "older name, its processes are the owner's children"},
		{fmt.Sprintf("gust-%d", parentPID), true, true, "older name, none of its processes is the owner's child"},
		{fmt.Sprintf("gust-%d", parentPID), false, false, "older name, empty, owner running: cannot tell"},
	}
	type stray struct {
		cmd  *exec.Cmd
		done chan struct{}
	}
	strays := make([]*stray, len(cases))
	dirs := make([]string, len(cases))
	for i, tc := range cases {
		// Two cases share a name: the second lives in a parent of its own.
		p := parent
		if i == len(cases)-1 {
			p = filepath.Join(parent, "second")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		dirs[i] = filepath.Join(p, tc.name)
		inst := filepath.Join(dirs[i], "instance")
		if err := os.MkdirAll(inst, 0o755); err != nil {
			t.Fatal(err)
		}
		if !tc.stray {
			continue
		}
		s := &stray{cmd: exec.Command("sleep", "60"), done: make(chan struct{})}
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.done })
		strays[i] = s
		if err := os.WriteFile(filepath.Join(inst, "cgroup.procs"), []byte(strconv.Itoa(s.cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reapStale([]string{parent, filepath.Join(parent, "second")}, v2, log)
	for i, tc := range cases {
		_, err := os.Stat(dirs[i])
		exists := err == nil
		if exists == tc.reaped {
			t.Errorf("%s (%s): cgroup exists %v after reaping", tc.name, tc.comment, exists)
		}
		if s := strays[i]; s != nil {
			select {
			case <-s.done:
				if !tc.reaped {
					t.Errorf("%s (%s): its process was killed", tc.name, tc.comment)
				}
			case <-time.After(map[bool]time.Duration{true: 5 * time.Second, false: 50 * time.Millisecond}[tc.reaped]):
				if tc.reaped {
					t.Errorf("%s (%s): its process still runs", tc.name, tc.comment)
				}
			}
		}
	}
}
