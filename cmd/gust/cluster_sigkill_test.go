package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/cluster/clustertest"
	"github.com/gustfaas/gust/secrets"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// clusterTotal is how many async invocations the cluster test has accepted.
const clusterTotal = 5000

// TestClusterSurvivesSIGKILL runs three nats-server processes clustered on
// loopback and three `gust serve --nats` processes of the
// real binary. While 5,000 async invocations are posted round the nodes, one
// gust node is SIGKILLed and later one NATS server is stopped; every
// invocation answered 202 must still complete, at least once (the ones run
// twice are reported). Then both come back and rejoin: `gust nodes` lists
// three nodes and the restarted node serves sync and async calls.
//
// Neither binary is built with -race even under `go test -race`: the
// processes are what is tested, not their data races (the packages' own
// tests cover those), and race builds (or NATS embedded in this race-built
// test) would more than double the run.
func TestClusterSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gust binary, starts three NATS servers and three gust nodes")
	}
	began := time.Now()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "gust")
	built := make(chan error, 1)
	go func() {
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build: %w\n%s", err, out)
		}
		built <- err
	}()
	natsBin := clustertest.BuildServer(t)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	code := wasmtest.Code(t, wasmtest.HelloC(t))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	ns := clustertest.StartProcs(t, natsBin, 3)
	var (
		dirs  [3]string
		procs [3]*gustProc
		procM sync.Mutex // procs[2] is replaced by the restart
	)
	// Every node is given every NATS server, as in production: its client
	// moves to another when the one it uses stops.
	args := func(i int) []string {
		return []string{"--nats", ns.URLs(), "--node-id", fmt.Sprintf("node-%c", 'a'+i), "--metering=false"}
	}
	for i := range procs {
		dirs[i] = filepath.Join(tmp, fmt.Sprintf("data-%c", 'a'+i))
		if i > 0 {
			key, err := os.ReadFile(filepath.Join(dirs[0], secrets.KeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dirs[i], 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dirs[i], secrets.KeyFile), key, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		procs[i] = startGust(t, ctx, bin, dirs[i], args(i)...)
		t.Cleanup(func() {
			procM.Lock()
			p := procs[i]
			procM.Unlock()
			p.kill(syscall.SIGTERM)
		})
	}
	t.Logf("three NATS servers and three gust nodes up %s after the test began", time.Since(began).Round(time.Millisecond))
	tok, err := os.ReadFile(filepath.Join(dirs[0], "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	c := client.New(procs[0].url, token)
	if _, err := c.Deploy(ctx, "noop", gust.Spec{MemoryMB: 16, MaxConcurrency: 8}, "noop.wasm", bytes.NewReader(code)); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for i, p := range procs {
		clusterWait(t, ctx, fmt.Sprintf("noop to serve on node %d", i), 10*time.Second, func() bool {
			return httpStatus(hc, "GET", p.url+"/fn/noop") == http.StatusOK
		})
	}

	var (
		mu       sync.Mutex
		accepted []string
		perNode  [3]int
		refused  atomic.Int64
		sent     atomic.Int64
		next     atomic.Int64
		dead     [3]atomic.Bool
	)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted)
	}
	// The events go round the nodes; a node marked dead is skipped, and a
	// request that fails (the node died under it, a NATS leader is being
	// elected) is counted as refused and sent again to the next node.
	var posters sync.WaitGroup
	for range 6 {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for ctx.Err() == nil && count() < clusterTotal {
				i := int(next.Add(1) % 3)
				if dead[i].Load() {
					continue
				}
				procM.Lock()
				url := procs[i].url
				procM.Unlock()
				sent.Add(1)
				resp, err := hc.Post(url+"/async/noop", "text/plain", strings.NewReader("x"))
				if err != nil {
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				mu.Lock()
				accepted = append(accepted, resp.Header.Get("X-Gust-Invocation-Id"))
				perNode[i]++
				mu.Unlock()
			}
		}()
	}

	// The SIGKILL lands at 40% with posts in flight and node C's workers
	// busy; a NATS server stops at 70%.
	clusterWait(t, ctx, "40% accepted", time.Minute, func() bool { return count() >= clusterTotal*4/10 })
	dead[2].Store(true)
	killedAt := time.Now()
	procs[2].kill(syscall.SIGKILL)
	t.Logf("SIGKILLed node C with %d accepted", count())
	clusterWait(t, ctx, "70% accepted", time.Minute, func() bool { return count() >= clusterTotal*7/10 })
	ns.Stop(1)
	t.Logf("stopped NATS server 1 with %d accepted", count())
	posters.Wait()
	mu.Lock()
	ids := append([]string(nil), accepted...)
	t.Logf("accepted %d (A %d, B %d, C %d) in %d requests; %d refused or failed", len(ids), perNode[0], perNode[1], perNode[2], sent.Load(), refused.Load())
	mu.Unlock()
	if len(ids) < clusterTotal {
		t.Fatalf("only %d accepted before the deadline", len(ids))
	}

	// Every accepted invocation completes. The events node C held when it
	// died come back to A and B after the consumer's AckWait (30 s).
	pending := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			t.Fatal("a 202 without an invocation id")
		}
		pending[id] = true
	}
	if len(pending) != len(ids) {
		t.Fatalf("%d accepted ids are not unique", len(ids)-len(pending))
	}
	dups, last := clusterCheckDone(t, ctx, c, pending, 100*time.Second)
	if len(pending) > 0 {
		var stuck []string
		for id := range pending {
			st, err := c.Invocation(ctx, id)
			if err != nil {
				stuck = append(stuck, fmt.Sprintf("%s: %v", id, err))
			} else {
				stuck = append(stuck, fmt.Sprintf("%s: %s, %d attempts, started %v", id, st.Status, st.Attempts, st.StartedAt))
			}
			if len(stuck) == 5 {
				break
			}
		}
		t.Fatalf("%d of %d accepted invocations never completed, e.g.\n%s\nnode A:\n%s\nnode B:\n%s", len(pending), len(ids), strings.Join(stuck, "\n"), procs[0].log(), procs[1].log())
	}
	t.Logf("all %d accepted invocations succeeded, the last %s after the SIGKILL; %d ran more than once (held by node C when it died, or by a worker whose NATS server stopped)",
		len(ids), last.Sub(killedAt).Round(time.Millisecond), dups)

	// Both come back and rejoin.
	ns.Restart(t, 1)
	p := startGust(t, ctx, bin, dirs[2], args(2)...)
	procM.Lock()
	procs[2] = p
	procM.Unlock()
	for _, u := range []string{procs[0].url, p.url} {
		cl := client.New(u, token)
		clusterWait(t, ctx, "three nodes listed by "+u, 15*time.Second, func() bool {
			nodes, err := cl.Nodes(ctx)
			return err == nil && len(nodes) == 3
		})
	}
	out, err := exec.CommandContext(ctx, bin, "nodes", "--url", procs[1].url, "--token", token).CombinedOutput()
	if err != nil {
		t.Fatalf("gust nodes: %v\n%s", err, out)
	}
	for _, id := range []string{"node-a", "node-b", "node-c"} {
		if !strings.Contains(string(out), id) {
			t.Fatalf("gust nodes does not list %s:\n%s", id, out)
		}
	}
	t.Logf("gust nodes after the restarts:\n%s", out)
	if s := httpStatus(hc, "GET", p.url+"/fn/noop"); s != http.StatusOK {
		t.Fatalf("sync call on the restarted node: %d", s)
	}
	resp, err := hc.Post(p.url+"/async/noop", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("async accept on the restarted node: %d", resp.StatusCode)
	}
	after := map[string]bool{resp.Header.Get("X-Gust-Invocation-Id"): true}
	if clusterCheckDone(t, ctx, client.New(p.url, token), after, 30*time.Second); len(after) > 0 {
		t.Fatalf("the async invocation accepted by the restarted node did not complete\n%s", p.log())
	}
	clusterWait(t, ctx, "the restarted NATS server to catch up", 30*time.Second, func() bool {
		return ns.Healthy(1)
	})
	t.Logf("the whole test took %s", time.Since(began).Round(time.Millisecond))
}

// clusterCheckDone polls the status of every pending invocation, eight at a time,
// until all are final or within has passed, deleting the succeeded ones from
// pending. It returns how many ran more than once and when the last one was
// seen done. An invocation that ends other than succeeded fails the test.
func clusterCheckDone(t *testing.T, ctx context.Context, c *client.Client, pending map[string]bool, within time.Duration) (dups int, last time.Time) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			work = make(chan string)
			bad  error
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					st, err := c.Invocation(ctx, id)
					mu.Lock()
					switch {
					case err != nil:
						// A status read may fail while a NATS leader is
						// elected; the next round asks again.
					case !st.Final():
					case st.Status != "succeeded":
						bad = fmt.Errorf("invocation %s ended %s: %s", id, st.Status, st.Error)
					default:
						if st.Attempts > 1 {
							dups++
						}
						delete(pending, id)
						last = time.Now()
					}
					mu.Unlock()
				}
			}()
		}
		mu.Lock()
		ids := make([]string, 0, len(pending))
		for id := range pending {
			ids = append(ids, id)
		}
		mu.Unlock()
		for _, id := range ids {
			work <- id
		}
		close(work)
		wg.Wait()
		if bad != nil {
			t.Fatal(bad)
		}
		if len(pending) > 0 {
			time.Sleep(time.Second)
		}
	}
	return dups, last
}

// clusterWait polls cond every 50 ms until it holds, failing the test after
// within.
func clusterWait(t *testing.T, ctx context.Context, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpStatus sends a bodyless request and returns its status, 0 on a transport
// error.
func httpStatus(hc *http.Client, method, url string) int {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
