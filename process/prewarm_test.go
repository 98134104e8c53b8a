//go:build linux

package process

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// What a handler reports about the process it runs in.
const (
	pyIntrospect = `import os
def handler(event, context):
    status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
    try:
        open("/tmp/task/written", "w")
        ro = False
    except OSError:
        ro = True
    return {"env": dict(os.environ), "uid": os.getuid(), "gid": os.getgid(), "groups": status["Groups"].strip(),
            "cwd": os.getcwd(), "capEff": status["CapEff"].strip(), "capPrm": status["CapPrm"].strip(),
            "capBnd": status["CapBnd"].strip(), "capInh": status["CapInh"].strip(),
            "noNewPrivs": status["NoNewPrivs"].strip(), "codeReadOnly": ro}
`
	jsIntrospect = `const fs = require("fs");
exports.handler = async () => {
  const status = Object.fromEntries(fs.readFileSync("/proc/self/status", "utf8").split("\n").filter((l) => l.includes(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]));
  let ro = false;
  try { fs.writeFileSync("/tmp/task/written", "x"); } catch (e) { ro = true; }
  return { env: { ...process.env }, uid: process.getuid(), gid: process.getgid(), groups: status.Groups,
    cwd: process.cwd(), capEff: status.CapEff, capPrm: status.CapPrm,
    capBnd: status.CapBnd, capInh: status.CapInh, noNewPrivs: status.NoNewPrivs, codeReadOnly: ro };
};
`
)

type introspection struct {
	Env          map[string]string `json:"env"`
	UID          int               `json:"uid"`
	GID          int               `json:"gid"`
	Groups       string            `json:"groups"` // supplementary, from /proc/self/status
	Cwd          string            `json:"cwd"`
	CapEff       string            `json:"capEff"`
	CapPrm       string            `json:"capPrm"`
	CapBnd       string            `json:"capBnd"`
	CapInh       string            `json:"capInh"`
	NoNewPrivs   string            `json:"noNewPrivs"`
	CodeReadOnly bool              `json:"codeReadOnly"`
}

func introspectCode(t *testing.T, runtime string) []byte {
	if runtime == gust.RuntimePython3 {
		return makeZip(t, zipEntry{name: "handler.py", data: []byte(pyIntrospect)})
	}
	return makeZip(t, zipEntry{name: "index.js", data: []byte(jsIntrospect)})
}

func handlerOf(runtime string) string {
	if runtime == gust.RuntimePython3 {
		return "handler.handler"
	}
	return "index.handler"
}

func requirePrewarm(t *testing.T, d *Driver) {
	t.Helper()
	if err := d.sb.prewarmSupport(); err != nil {
		t.Skipf("no pre-warmed workers here: %v", err)
	}
	requireInterpreter(t, d, gust.RuntimePython3)
	requireInterpreter(t, d, gust.RuntimeNodejs)
}

// waitPrewarmed waits a bounded time until runtime has n workers ready.
func waitPrewarmed(t *testing.T, d *Driver, runtime string, n int) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if d.PrewarmStats().Ready[runtime] >= n {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: %d pre-warmed workers ready after 10s, want %d", runtime, d.PrewarmStats().Ready[runtime], n)
}

// A cold start takes a pre-warmed worker, which then runs as the
// function's user with the function's environment only, nothing of the
// worker's or of another function's, with no capabilities left, and the
// pool refills.
func TestPrewarmedWorkerBecomesTheFunction(t *testing.T) {
	d := newDriver(t)
	requirePrewarm(t, d)
	for _, runtime := range []string{gust.RuntimePython3, gust.RuntimeNodejs} {
		t.Run(runtime, func(t *testing.T) {
			code := introspectCode(t, runtime)
			fns := []struct{ name, key, value string }{
				{"alpha-" + runtime, "ALPHA_SECRET", "a1"},
				{"beta-" + runtime, "BETA_SECRET", "b2"},
			}
			var mods []gust.Module
			for _, fn := range fns {
				mods = append(mods, load(t, d, fn.name, gust.Spec{Runtime: runtime, Handler: handlerOf(runtime),
					Env: map[string]string{fn.key: fn.value, "TZ": "Europe/Paris"}}, code, nil))
			}
			for i, fn := range fns {
				waitPrewarmed(t, d, runtime, 1)
				taken := d.PrewarmStats().Taken
				in := start(t, mods[i])
				if got := d.PrewarmStats().Taken; got != taken+1 || !in.(*lambdaInstance).prewarmed {
					t.Fatalf("the cold start did not specialize a pre-warmed worker (taken %d, then %d)", taken, got)
				}
				var got introspection
				resp := mustInvoke(t, in, &gust.Request{Path: "/"})
				if err := json.Unmarshal(resp.Body, &got); err != nil {
					t.Fatalf("%v: %s", err, resp.Body)
				}
				other := fns[1-i]
				if got.Env[fn.key] != fn.value || got.Env["AWS_LAMBDA_FUNCTION_NAME"] != fn.name || got.Env["TZ"] != "Europe/Paris" {
					t.Errorf("%s: environment lacks its own variables: %v", fn.name, got.Env)
				}
				for _, k := range []string{other.key, "GUST_PREWARMED"} {
					if _, ok := got.Env[k]; ok {
						t.Errorf("%s: environment has %s: %v", fn.name, k, got.Env)
					}
				}
				// The same environment as a cold start without the pool.
				want := mods[i].(*module).env(in.(*lambdaInstance).instance, mods[i].(*module).lambdaVars(context.Background(), "127.0.0.1:"+strconv.Itoa(nsAPIPort), in.(*lambdaInstance).instance))
				for k, v := range want {
					if got.Env[k] != v {
						t.Errorf("%s: %s=%q, want %q", fn.name, k, got.Env[k], v)
					}
				}
				for k := range got.Env {
					if _, ok := want[k]; !ok && k != "_X_AMZN_TRACE_ID" {
						t.Errorf("%s: unexpected variable %s", fn.name, k)
					}
				}
				uid := d.uidFor(fn.name)
				if got.UID != uid || got.GID != uid || got.Groups != "" {
					t.Errorf("%s runs as uid %d gid %d groups %q, want %d", fn.name, got.UID, got.GID, got.Groups, uid)
				}
				if got.CapEff != "0000000000000000" || got.CapPrm != "0000000000000000" || got.NoNewPrivs != "1" {
					t.Errorf("%s: capabilities eff %s prm %s, no_new_privs %s", fn.name, got.CapEff, got.CapPrm, got.NoNewPrivs)
				}
				// Nothing left for an exec to gain either; node cannot
				// empty its inheritable set (see workerCapabilities).
				if got.CapBnd != "0000000000000000" || (runtime == gust.RuntimePython3 && got.CapInh != "0000000000000000") {
					t.Errorf("%s: capabilities bounding %s inheritable %s", fn.name, got.CapBnd, got.CapInh)
				}
				if !got.CodeReadOnly || got.Cwd != sandboxTaskRoot {
					t.Errorf("%s: code read-only %v, cwd %s", fn.name, got.CodeReadOnly, got.Cwd)
				}
			}
			// The pool refills after each cold start.
			waitPrewarmed(t, d, runtime, 1)
		})
	}
}

// A function with more memory than a worker's own limit and one with less
// than an interpreter needs: both start, from a worker or cold.
func TestPrewarmMemoryLimits(t *testing.T) {
	d := newDriver(t)
	requirePrewarm(t, d)
	for _, mb := range []int{512, 8} {
		m := load(t, d, fmt.Sprintf("mem-%d", mb), gust.Spec{Runtime: gust.RuntimePython3, Handler: "handler.handler", MemoryMB: mb},
			introspectCode(t, gust.RuntimePython3), nil)
		waitPrewarmed(t, d, gust.RuntimePython3, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		in, err := m.NewInstance(ctx)
		cancel()
		if mb < 16 {
			// Too small for python either way: the error is the
			// function's (or its worker's) memory, never a hang.
			if err == nil {
				in.Close(context.Background())
			}
			t.Logf("%d MB: %v", mb, err)
			continue
		}
		if err != nil {
			t.Fatalf("%d MB: %v", mb, err)
		}
		if !in.(*lambdaInstance).prewarmed {
			t.Errorf("%d MB: not started from a pre-warmed worker", mb)
		}
		limit, err := readInt(in.(*lambdaInstance).p.cg.mem + "/memory.limit_in_bytes")
		if d.sb.cg.v2 {
			limit, err = readInt(in.(*lambdaInstance).p.cg.mem + "/memory.max")
		}
		if err != nil || limit != int64(mb)<<20 {
			t.Errorf("%d MB: cgroup limit %d (%v)", mb, limit, err)
		}
		mustInvoke(t, in, &gust.Request{Path: "/"})
		in.Close(context.Background())
	}
}

// descendants counts the processes below this one.
func descendants(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		parent[pid] = ppid
	}
	me, n := os.Getpid(), 0
	for pid := range parent {
		for p, hops := parent[pid], 0; p > 1 && hops < 64; p, hops = parent[p], hops+1 {
			if p == me {
				n++
				break
			}
		}
	}
	return n
}

// Closing the driver kills every worker: no process is left behind.
func TestPrewarmDrainedOnClose(t *testing.T) {
	before := descendants(t)
	d, err := New(Config{WorkDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Prewarm: 2})
	if err != nil {
		t.Fatal(err)
	}
	requirePrewarm(t, d)
	for _, runtime := range []string{gust.RuntimePython3, gust.RuntimeNodejs} {
		load(t, d, "drain-"+runtime, gust.Spec{Runtime: runtime, Handler: handlerOf(runtime)}, introspectCode(t, runtime), nil)
	}
	waitPrewarmed(t, d, gust.RuntimePython3, 2)
	waitPrewarmed(t, d, gust.RuntimeNodejs, 2)
	// Each worker is a helper and its interpreter.
	if n := descendants(t) - before; n < 8 {
		t.Fatalf("%d processes with 4 workers ready, want at least 8", n)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && descendants(t) > before; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if n := descendants(t); n != before {
		t.Fatalf("%d processes left after Close, want %d", n, before)
	}
}

// The last version of a runtime unloaded takes its workers with it.
func TestPrewarmFollowsLoadedRuntimes(t *testing.T) {
	d := newDriver(t)
	requirePrewarm(t, d)
	m, err := loadErr(d, "only", gust.Spec{Runtime: gust.RuntimeNodejs, Handler: "index.handler"}, introspectCode(t, gust.RuntimeNodejs), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitPrewarmed(t, d, gust.RuntimeNodejs, 1)
	if n := d.PrewarmStats().Ready[gust.RuntimePython3]; n != 0 {
		t.Errorf("%d python3 workers with no python3 function loaded", n)
	}
	m.Close(context.Background())
	if n := d.PrewarmStats().Ready[gust.RuntimeNodejs]; n != 0 {
		t.Errorf("%d nodejs workers left after the last nodejs version closed", n)
	}
}

// A start marked provisioned (a pool's start for MinInstances) tells the
// function so, as Lambda does; a start for an invocation is on-demand.
// Both for a cold-started interpreter and a specialized pre-warmed one.
func TestInitializationType(t *testing.T) {
	for _, prewarm := range []int{-1, 1} {
		t.Run(fmt.Sprintf("prewarm=%d", prewarm), func(t *testing.T) {
			d, err := New(Config{WorkDir: t.TempDir(), Prewarm: prewarm, SpareSandboxes: -1,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StartTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close(context.Background())
			requireInterpreter(t, d, gust.RuntimePython3)
			if prewarm > 0 {
				requirePrewarm(t, d)
			}
			m := load(t, d, "init-type", gust.Spec{Runtime: gust.RuntimePython3, Handler: "handler.handler"},
				introspectCode(t, gust.RuntimePython3), nil)
			for _, provisioned := range []bool{true, false} {
				if prewarm > 0 {
					waitPrewarmed(t, d, gust.RuntimePython3, 1)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				if provisioned {
					ctx = gust.WithProvisioned(ctx)
				}
				in, err := m.NewInstance(ctx)
				cancel()
				if err != nil {
					t.Fatalf("NewInstance: %v", err)
				}
				if prewarm > 0 && !in.(*lambdaInstance).prewarmed {
					t.Errorf("the start did not specialize a pre-warmed worker")
				}
				var got introspection
				resp := mustInvoke(t, in, &gust.Request{Path: "/"})
				in.Close(context.Background())
				if err := json.Unmarshal(resp.Body, &got); err != nil {
					t.Fatalf("%v: %s", err, resp.Body)
				}
				want := "on-demand"
				if provisioned {
					want = "provisioned-concurrency"
				}
				if v := got.Env["AWS_LAMBDA_INITIALIZATION_TYPE"]; v != want {
					t.Errorf("provisioned %v: AWS_LAMBDA_INITIALIZATION_TYPE=%q, want %q", provisioned, v, want)
				}
			}
		})
	}
}
