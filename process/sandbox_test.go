//go:build linux

package process

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gustfaas/gust"
)

// TestSandbox tries what a hostile function would, and checks that each
// attempt is blocked or contained. What the machine does not allow is
// skipped with the reason Isolation gives.
func TestSandbox(t *testing.T) {
	d := newDriver(t)
	iso := d.Isolation()
	t.Logf("isolation here: %+v", iso)
	if !iso.OwnUser {
		t.Skipf("functions do not get a user of their own here: %v", iso.Notes)
	}
	// A secret of gust's, in a directory only root may enter (as the
	// data dir is).
	secretDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(secretDir, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(secretDir, "admin.token")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}

	victim := start(t, load(t, d, "victim", gust.Spec{Runtime: gust.RuntimeProcess, Env: map[string]string{"VICTIM_SECRET": "hunter2"}}, httpFn(t), nil))
	in := start(t, load(t, d, "attacker", gust.Spec{Runtime: gust.RuntimeProcess}, httpFn(t), nil))
	get := func(path, query string) string {
		return string(mustInvoke(t, in, &gust.Request{Path: path, Query: query}).Body)
	}
	blocked := func(what, path, query string) {
		t.Helper()
		got := get(path, query)
		t.Logf("%s: %s", what, got)
		if got == "ok" {
			t.Errorf("%s succeeded", what)
		}
	}

	who := get("/whoami", "")
	t.Logf("whoami: %s", who)
	uid := d.uidFor("attacker")
	if !strings.Contains(who, fmt.Sprintf(`"uid":%d`, uid)) || !strings.Contains(who, fmt.Sprintf("Uid:\\t%d\\t%d", uid, uid)) {
		t.Errorf("function runs as %s, want uid %d", who, uid)
	}
	if d.uidFor("victim") == uid {
		t.Error("two functions share a uid")
	}

	blocked("read /etc/shadow", "/read", "path=/etc/shadow")
	blocked("read gust's data dir", "/read", "path="+secret)
	blocked("list gust's work dir", "/list", "path="+d.cfg.WorkDir)
	blocked("write /etc", "/write", "path=/etc/gust-was-here")
	blocked("write its own code", "/write", "path=./bootstrap-new")
	if got := get("/write", "path=/tmp/scratch"); got != "ok" {
		t.Errorf("write /tmp: %s", got)
	}
	victimPID := victim.(*httpInstance).PID()
	blocked("read another function's environment", "/read", "path=/proc/"+strconv.Itoa(victimPID)+"/environ")

	if iso.Namespaces {
		if n, _ := strconv.Atoi(get("/procs", "")); n < 1 || n > 3 {
			t.Errorf("function sees %d processes, want its own only", n)
		}
		if _, err := os.Stat("/tmp/scratch"); err == nil {
			t.Error("the function's /tmp is the host's")
		}
	} else {
		t.Logf("not checked, no namespaces: %v", iso.Notes)
	}
	// The network: a gateway-like HTTP port and a real NATS server, both
	// on the host's 127.0.0.1, must be out of reach.
	gw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	go func() {
		for {
			c, err := gw.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	natsAddr := ns.Addr().String()
	if iso.Network {
		blocked("connect to the gateway's port", "/dial", "addr="+gw.Addr().String())
		blocked("connect to NATS", "/dial", "addr="+natsAddr)
		// Egress, when the spec asks for it, is the host's network.
		out := start(t, load(t, d, "egress", gust.Spec{Runtime: gust.RuntimeProcess, Egress: true}, httpFn(t), nil))
		if got := string(mustInvoke(t, out, &gust.Request{Path: "/dial", Query: "addr=" + natsAddr}).Body); got != "ok" {
			t.Errorf("egress function cannot reach NATS: %s", got)
		}
	} else {
		t.Logf("not checked, no network namespace: %v", iso.Notes)
	}
	if iso.Namespaces {
		// /var/tmp and /dev/shm are world-writable on the host; inside
		// they are the instance's own /tmp.
		t.Logf("write /var/tmp: %s", get("/write", "path=/var/tmp/gust-was-here"))
		if _, err := os.Stat("/var/tmp/gust-was-here"); err == nil {
			_ = os.Remove("/var/tmp/gust-was-here")
			t.Error("the function wrote the host's /var/tmp")
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	d := newDriver(t)
	if d.Isolation().Cgroup == "" {
		t.Skipf("no cgroup here, memory is bounded by RLIMIT_AS only, which a Go program meets as a crash, not as EOOM: %v", d.Isolation().Notes)
	}
	m := load(t, d, "hog", gust.Spec{Runtime: gust.RuntimeProcess, MemoryMB: 48}, httpFn(t), nil)
	in := start(t, m)
	if resp := mustInvoke(t, in, &gust.Request{Path: "/alloc", Query: "mb=8"}); string(resp.Body) != "8" {
		t.Fatalf("small allocation: %s", resp.Body)
	}
	_, err := invoke(t, in, 20*time.Second, &gust.Request{Path: "/alloc", Query: "mb=200"})
	wantCode(t, err, gust.EOOM)
	if !strings.Contains(err.Error(), "memory limit of 48 MB") {
		t.Errorf("error %q", err)
	}
}

func TestForkBombContained(t *testing.T) {
	d, err := New(Config{WorkDir: t.TempDir(), PidsMax: 32})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(t.Context()) })
	requireInterpreter(t, d, gust.RuntimePython3)
	if d.Isolation().Cgroup == "" || d.sb.cg.pidBase == "" {
		t.Skipf("no pids cgroup here: %v", d.Isolation().Notes)
	}
	src := `import os, time
def handler(event, context):
    n = 0
    for _ in range(5000):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
    return n
`
	m := load(t, d, "bomb", gust.Spec{Runtime: gust.RuntimePython3, Handler: "handler.handler"}, makeZip(t, zipEntry{name: "handler.py", data: []byte(src)}), nil)
	in := start(t, m)
	resp := mustInvoke(t, in, &gust.Request{Path: "/"})
	n, err := strconv.Atoi(string(resp.Body))
	if err != nil || n >= d.cfg.PidsMax || n == 0 {
		t.Fatalf("forked %s processes, want fewer than pids.max %d", resp.Body, d.cfg.PidsMax)
	}
	t.Logf("fork bomb stopped after %d processes", n)
	li := in.(*lambdaInstance)
	cg := li.p.cg
	in.Close(t.Context())
	if _, err := os.Stat(cg.pids); !os.IsNotExist(err) {
		t.Errorf("pids cgroup %s left behind: %v", cg.pids, err)
	}
}

// An instance started from a spare sandbox (prepared ahead: namespaces,
// cgroup, mounts, loopback, bounding set) has every guarantee of one
// started from scratch, and a spare serves one instance only.
func TestSpareSandbox(t *testing.T) {
	for _, spares := range []int{0, -1} {
		t.Run(fmt.Sprintf("spares=%d", spares), func(t *testing.T) {
			d, err := New(Config{WorkDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), SpareSandboxes: spares, Prewarm: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close(context.Background()) })
			iso := d.Isolation()
			if !iso.OwnUser || !iso.Namespaces {
				t.Skipf("no full sandbox here: %v", iso.Notes)
			}
			if spares == 0 {
				waitSpare(t, d)
			}
			m := load(t, d, "spare", gust.Spec{Runtime: gust.RuntimeProcess, Env: map[string]string{"MINE": "1"}}, httpFn(t), nil)
			in := start(t, m)
			var who struct {
				UID  int               `json:"uid"`
				Caps map[string]string `json:"caps"`
			}
			if err := json.Unmarshal(mustInvoke(t, in, &gust.Request{Path: "/whoami"}).Body, &who); err != nil {
				t.Fatal(err)
			}
			if who.UID != d.uidFor("spare") {
				t.Errorf("uid %d, want %d", who.UID, d.uidFor("spare"))
			}
			for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
				if who.Caps[k] != "0000000000000000" {
					t.Errorf("%s = %q, want none", k, who.Caps[k])
				}
			}
			if who.Caps["NoNewPrivs"] != "1" {
				t.Errorf("NoNewPrivs = %q", who.Caps["NoNewPrivs"])
			}
			get := func(path, query string) string {
				return string(mustInvoke(t, in, &gust.Request{Path: path, Query: query}).Body)
			}
			if got := get("/write", "path=./bootstrap-new"); got == "ok" {
				t.Error("the code is writable")
			}
			if got := get("/write", "path=/tmp/scratch"); got != "ok" {
				t.Errorf("write /tmp: %s", got)
			}
			if _, err := os.Stat("/tmp/scratch"); err == nil {
				t.Error("the function's /tmp is the host's")
			}
			if n, _ := strconv.Atoi(get("/procs", "")); n < 1 || n > 3 {
				t.Errorf("function sees %d processes, want its own only", n)
			}
			var env []string
			if err := json.Unmarshal(mustInvoke(t, in, &gust.Request{Path: "/env"}).Body, &env); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(env, "MINE=1") || slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GUST_") }) {
				t.Errorf("environment %v", env)
			}
			if got := get("/dial", "addr=127.0.0.1:"+strconv.Itoa(nsAPIPort)); got == "ok" {
				t.Error("an http function reaches the Runtime API bridge's port")
			}
			// Each instance has a helper of its own, gone with it.
			other := start(t, m)
			first := in.(*httpInstance)
			if other.(*httpInstance).PID() == first.PID() {
				t.Fatal("two instances share a sandbox")
			}
			first.Close(context.Background())
			select {
			case <-first.p.exited:
			case <-time.After(5 * time.Second):
				t.Fatal("a closed instance's sandbox still runs")
			}
			if spares == 0 {
				waitSpare(t, d)
				third := start(t, m)
				if third.(*httpInstance).PID() == first.PID() {
					t.Error("a sandbox was reused")
				}
			}
		})
	}
}

func waitSpare(t *testing.T, d *Driver) {
	t.Helper()
	for i := 0; d.sb.spareCount() == 0; i++ {
		if i == 1000 {
			t.Fatal("no spare sandbox was prepared within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSparePausedDuringColdStart checks that a spare being prepared is
// stopped while a cold start is under way, and finishes once none is.
func TestSparePausedDuringColdStart(t *testing.T) {
	d, err := New(Config{WorkDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), Prewarm: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	if iso := d.Isolation(); !iso.OwnUser || !iso.Namespaces {
		t.Skipf("no full sandbox here: %v", iso.Notes)
	}
	waitSpare(t, d)
	d.sb.beginStart()
	state := func() (int, string) {
		d.sb.startsMu.Lock()
		p := d.sb.preparing
		d.sb.startsMu.Unlock()
		if p == nil {
			return 0, ""
		}
		pid := p.cmd.Process.Pid
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && len(b) > i+2 {
			return pid, string(b[i+2])
		}
		return pid, ""
	}
	drain := func() {
		for sp := d.sb.takeSpare(d.sb.network); sp != nil; sp = d.sb.takeSpare(d.sb.network) {
			sp.discard()
		}
	}
	// Use up the ready spares, so that the refill prepares one, which
	// must stop. Once one is being prepared, every earlier one is ready.
	var pid int
	for i := 0; ; i++ {
		drain()
		p, st := state()
		if st == "T" {
			pid = p
			break
		}
		if i == 1000 {
			t.Fatalf("no spare was stopped during a cold start (pid %d, state %q)", p, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	drain()
	time.Sleep(100 * time.Millisecond)
	if n := d.sb.spareCount(); n != 0 {
		t.Fatalf("%d spares got ready during a cold start", n)
	}
	if _, st := state(); st != "T" {
		t.Fatalf("spare %d resumed during a cold start: state %q", pid, st)
	}
	d.sb.startDone()
	waitSpare(t, d)
}
