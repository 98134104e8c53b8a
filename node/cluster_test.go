package node

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/auth"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/cluster/clustertest"
	"github.com/gustfaas/gust/secrets"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// clusterNodes starts three NATS servers clustered on loopback and one gust
// node on each, as an operator would: the first node's master key copied to
// the others, each node with its own admin token, replicas left for the
// broker to choose.
func clusterNodes(t *testing.T) (*clustertest.NATS, []*Node, []*client.Client) {
	t.Helper()
	began := time.Now()
	ns := clustertest.Start(t, 3)
	t.Logf("NATS cluster started in %s", time.Since(began))
	var nodes []*Node
	var clients []*client.Client
	var first string
	for i := range ns.Servers {
		dir := t.TempDir()
		if first != "" {
			for _, f := range []string{secrets.KeyFile} {
				b, err := os.ReadFile(filepath.Join(first, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			first = dir
		}
		began := time.Now()
		n, c := testNode(t, dir, func(cfg *Config) {
			cfg.NATSURL = ns.URL(i)
			cfg.NodeID = fmt.Sprintf("node-%c", 'a'+i)
			cfg.HeartbeatEvery = 500 * time.Millisecond
		})
		t.Logf("node %d started in %s", i, time.Since(began))
		nodes = append(nodes, n)
		clients = append(clients, c)
	}
	return ns, nodes, clients
}

func TestCluster(t *testing.T) {
	ns, nodes, clients := clusterNodes(t)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()

	t.Run("replicas default to three", func(t *testing.T) {
		nc, err := nats.Connect(ns.URL(0))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		kv, err := js.KeyValue(ctx, auth.TokenBucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
			t.Fatalf("token bucket replicas = %d, want 3", r)
		}
	})

	t.Run("gust nodes lists every node", func(t *testing.T) {
		for i, cl := range clients {
			waitFor(t, "three nodes", 5*time.Second, func() bool {
				ns, err := cl.Nodes(ctx)
				return err == nil && len(ns) == 3
			})
			ns, _ := cl.Nodes(ctx)
			for j, n := range ns {
				want := nodes[j]
				if n.ID != fmt.Sprintf("node-%c", 'a'+j) || n.Address != want.URL() || n.Version != Version ||
					n.MemoryBudgetMB != 4096 || n.Self != (i == j) {
					t.Fatalf("node %d lists %+v", i, n)
				}
			}
		}
	})

	t.Run("deploy on one node, invoke on the others", func(t *testing.T) {
		deploy(t, clients[0], "hello", gust.Spec{}, wasmtest.Code(t, wasmtest.Hello(t)))
		start := time.Now()
		for _, n := range []*Node{b, c} {
			waitFor(t, "the deploy to reach "+n.Cluster().ID(), 5*time.Second, func() bool {
				_, err := n.Registry().Function(ctx, "hello")
				return err == nil
			})
		}
		t.Logf("deploy visible on the other nodes %s after it returned", time.Since(start))
		for _, n := range []*Node{b, c} {
			r := do(t, "GET", n.URL()+"/fn/hello?name=cluster", nil)
			if r.status != 200 || !strings.Contains(string(r.body), "cluster") {
				t.Fatalf("%s: %d %s", n.Cluster().ID(), r.status, r.body)
			}
		}
	})

	t.Run("a token from one node works on another", func(t *testing.T) {
		secret, _, err := clients[0].CreateToken(ctx, "read", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		onC := client.New(c.URL(), secret)
		if _, err := onC.Functions(ctx); err != nil {
			t.Fatalf("token created on A, used on C: %v", err)
		}
		adminA, err := os.ReadFile(a.TokenPath())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := client.New(c.URL(), strings.TrimSpace(string(adminA))).CreateToken(ctx, "read", nil, time.Minute); err != nil {
			t.Fatalf("node A's bootstrap admin token, used on C: %v", err)
		}
	})

	t.Run("calls over a node's share are forwarded", func(t *testing.T) {
		deploy(t, clients[0], "narrow", gust.Spec{MaxConcurrency: 3, QueueTimeout: gust.Duration(100 * time.Millisecond)},
			wasmtest.Code(t, wasmtest.GoGuest(t, sleepGuest)))
		for _, n := range nodes[1:] {
			waitFor(t, "narrow on "+n.Cluster().ID(), 5*time.Second, func() bool {
				_, err := n.Registry().Function(ctx, "narrow")
				return err == nil
			})
		}
		// Warm each node so a cold compile does not stretch the burst.
		for _, n := range nodes {
			if r := do(t, "GET", n.URL()+"/fn/narrow?ms=1", nil); r.status != 200 {
				t.Fatalf("warm-up: %d %s", r.status, r.body)
			}
		}
		// Max concurrency 3 on three nodes is a share of one each: of four
		// concurrent calls to A, three run (one here, two forwarded, with
		// their invocation ids) and one is throttled.
		statuses := make([]int, 4)
		ids := make([]string, 4)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", a.URL()+"/fn/narrow?ms=1500", nil)
				req.Header.Set("X-Gust-Invocation-Id", fmt.Sprintf("burst-%d", i))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i], ids[i] = resp.StatusCode, resp.Header.Get("X-Gust-Invocation-Id")
			}()
		}
		wg.Wait()
		count := map[int]int{}
		for i, s := range statuses {
			count[s]++
			if ids[i] != fmt.Sprintf("burst-%d", i) {
				t.Fatalf("call %d answered with invocation id %q", i, ids[i])
			}
		}
		if count[200] != 3 || count[429] != 1 {
			t.Fatalf("statuses %v, want three 200 and one 429", statuses)
		}
		for _, n := range nodes {
			ran := false
			for _, s := range n.Invoker().Stats() {
				if s.Function == "narrow" && s.ColdStarts > 0 {
					ran = true
				}
			}
			if !ran {
				t.Fatalf("%s ran no call of narrow", n.Cluster().ID())
			}
		}
	})

	t.Run("async invocations accepted on one node run once", func(t *testing.T) {
		const calls = 20
		var ids []string
		for i := 0; i < calls; i++ {
			r := do(t, "POST", a.URL()+"/async/hello?name=async", []byte("x"))
			if r.status != http.StatusAccepted {
				t.Fatalf("accept: %d %s", r.status, r.body)
			}
			ids = append(ids, r.header.Get("X-Gust-Invocation-Id"))
		}
		for _, id := range ids {
			waitFor(t, "invocation "+id, 20*time.Second, func() bool {
				st, err := clients[2].Invocation(ctx, id)
				return err == nil && st.Status == "succeeded"
			})
		}
		runs := meteredRuns(t, nodes, clients[1], "hello")
		for _, id := range ids {
			if runs[id] != 1 {
				t.Fatalf("async invocation %s ran %d times", id, runs[id])
			}
		}
	})

	t.Run("cron fires once per tick across the cluster", func(t *testing.T) {
		deploy(t, clients[0], "tick", gust.Spec{Triggers: []gust.Trigger{{Cron: "@every 1s"}}},
			wasmtest.Code(t, wasmtest.Hello(t)))
		time.Sleep(3500 * time.Millisecond)
		runs := meteredRuns(t, nodes, clients[0], "tick")
		if len(runs) < 2 {
			t.Fatalf("%d ticks ran in 3.5s", len(runs))
		}
		for id, k := range runs {
			if k != 1 {
				t.Fatalf("tick %s ran %d times", id, k)
			}
		}
	})

	t.Run("a node that stops is dropped and shares rebalance", func(t *testing.T) {
		closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c.Close(closeCtx)
		waitFor(t, "two nodes", 5*time.Second, func() bool {
			ns, err := clients[0].Nodes(ctx)
			return err == nil && len(ns) == 2
		})
		if live := a.Cluster().Live(); live != 2 {
			t.Fatalf("A sees %d live nodes", live)
		}
		// A share of two each now: four concurrent calls all run.
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := do(t, "GET", a.URL()+"/fn/narrow?ms=300", nil)
				if r.status != 200 {
					t.Errorf("after rebalancing: %d %s", r.status, r.body)
				}
			}()
		}
		wg.Wait()
	})

	t.Run("a NATS server stops and service continues", func(t *testing.T) {
		// B's server goes; B's client finds another from the cluster's
		// gossip, and two of three replicas keep every stream writable.
		ns.Servers[1].Shutdown()
		ns.Servers[1].WaitForShutdown()
		var id string
		waitFor(t, "an async accept on B", 30*time.Second, func() bool {
			r := do(t, "POST", b.URL()+"/async/hello?name=after", []byte("x"))
			id = r.header.Get("X-Gust-Invocation-Id")
			return r.status == http.StatusAccepted
		})
		waitFor(t, "the async invocation to run", 30*time.Second, func() bool {
			st, err := clients[0].Invocation(ctx, id)
			return err == nil && st.Status == "succeeded"
		})
		if r := do(t, "GET", b.URL()+"/fn/hello?name=still", nil); r.status != 200 {
			t.Fatalf("sync call on B: %d %s", r.status, r.body)
		}
		waitFor(t, "A and B to see each other", 10*time.Second, func() bool {
			ns, err := clients[0].Nodes(ctx)
			return err == nil && len(ns) == 2
		})
	})
}

// meteredRuns counts the metered runs of function per invocation id, after
// every live node has flushed its usage records.
func meteredRuns(t *testing.T, nodes []*Node, cl *client.Client, function string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		if n.Meter() != nil {
			_ = n.Meter().Flush(ctx)
		}
	}
	recs, err := cl.Invocations(ctx, client.HistoryQuery{Function: function, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, r := range recs {
		if r.Status == gust.StatusOK {
			runs[r.ID]++
		}
	}
	return runs
}
