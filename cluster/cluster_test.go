package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/cluster"
	"github.com/gustfaas/gust/cluster/clustertest"
	"github.com/gustfaas/gust/httperr"
)

// local is a node's invoker for these tests: the real one needs a driver
// and code, which node/cluster_test.go covers; here what matters is which
// node ran a call and when it finishes.
type local struct {
	name    string
	version *gust.Version
	release chan struct{} // calls block until it is closed
	full    bool          // every call is refused for want of memory
	queued  bool          // every call is throttled, as a pool queue whose caller left
	unknown bool          // the registry here has not seen the version yet
	fail    error         // every call that runs ends with this error
	mu      sync.Mutex
	reqs    []gust.Request // the requests run here, as they arrived
	ran     []string       // invocation ids run here
	running int
}

func (l *local) Resolve(context.Context, string, string) (*gust.Version, error) {
	if l.unknown {
		return nil, gust.Errorf(gust.ENOTFOUND, "function f has no version 1 on %s", l.name)
	}
	return l.version, nil
}

func (l *local) Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error) {
	if l.full {
		return nil, gust.Errorf(gust.ECAPACITY, "node %s is full", l.name)
	}
	if l.queued {
		return nil, gust.WrapError(gust.ETHROTTLED, ctx.Err(), "request ended while queued on %s", l.name)
	}
	l.mu.Lock()
	l.ran = append(l.ran, req.ID)
	l.reqs = append(l.reqs, *req)
	l.running++
	l.mu.Unlock()
	if l.fail != nil {
		l.mu.Lock()
		l.running--
		l.mu.Unlock()
		return nil, l.fail
	}
	<-l.release
	l.mu.Lock()
	l.running--
	l.mu.Unlock()
	return &gust.Response{Status: 200, Header: http.Header{"X-Node": {l.name}}, Body: append([]byte(l.name+":"), req.Body...)}, nil
}

func (l *local) Stats() []gust.PoolStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return []gust.PoolStats{{Function: "f", Version: 1, Busy: l.running, InFlight: l.running}}
}

func (l *local) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ran)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type member struct {
	c  *cluster.Cluster
	l  *local
	nc *nats.Conn
}

// startMembers starts one Cluster per NATS server, each on its own
// connection, all running version v.
func startMembers(t testing.TB, ns *clustertest.NATS, v *gust.Version, release chan struct{}) []member {
	t.Helper()
	var out []member
	for i := range ns.Servers {
		nc, err := nats.Connect(ns.URL(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		l := &local{name: fmt.Sprintf("n%d", i), version: v, release: release}
		c, err := cluster.New(cluster.Config{
			Conn: nc, Local: l, ID: l.name, Version: "test",
			Interval: 100 * time.Millisecond, Missed: 10, Logger: quiet(),
			Budget: func() (int, int) { return 1024, 0 },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start("http://" + l.name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		out = append(out, member{c: c, l: l, nc: nc})
	}
	return out
}

// eventually polls cond every 10ms for up to 5s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func allLive(ms []member, n int) func() bool {
	return func() bool {
		for _, m := range ms {
			if m.c.Live() != n {
				return false
			}
		}
		return true
	}
}

func TestShare(t *testing.T) {
	for _, tc := range []struct{ max, live, want int }{
		{10, 1, 10}, {10, 3, 4}, {2, 3, 1}, {3, 3, 1}, {4, 3, 2}, {1, 5, 1}, {0, 3, 1}, {7, 0, 7},
	} {
		if got := cluster.Share(tc.max, tc.live); got != tc.want {
			t.Errorf("Share(%d, %d) = %d, want %d", tc.max, tc.live, got, tc.want)
		}
	}
}

func TestMembership(t *testing.T) {
	ns := clustertest.Start(t, 3)
	ms := startMembers(t, ns, &gust.Version{Function: "f", Number: 1}, make(chan struct{}))
	eventually(t, "three live nodes everywhere", allLive(ms, 3))

	// The list is what `gust nodes` shows.
	srv := httptest.NewServer(ms[0].c.NodesHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var body cluster.NodesResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(body.Nodes) != 3 || body.Nodes[0].ID != "n0" || !body.Nodes[0].Self || body.Nodes[1].Address != "http://n1" ||
		body.Nodes[2].Version != "test" || body.Nodes[2].MemoryBudgetMB != 1024 {
		t.Fatalf("nodes = %+v", body.Nodes)
	}

	// A node that closes is gone at once; one that falls silent (its
	// connection dies, as when the process is killed) after three
	// intervals.
	if err := ms[2].c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 dropped after Close", allLive(ms[:2], 2))
	ms[1].nc.Close()
	eventually(t, "silent n1 dropped", func() bool { return ms[0].c.Live() == 1 })
}

func TestForwardingToNodesWithRoom(t *testing.T) {
	ns := clustertest.Start(t, 3)
	release := make(chan struct{})
	v := &gust.Version{Function: "f", Number: 1, Spec: gust.Spec{
		MaxConcurrency: 3, QueueTimeout: gust.Duration(50 * time.Millisecond), Timeout: gust.Duration(5 * time.Second),
	}}
	ms := startMembers(t, ns, v, release)
	eventually(t, "three live nodes", allLive(ms, 3))
	a := ms[0].c

	// A share of one on each of three nodes: three concurrent calls to A
	// run one on each node.
	type result struct {
		resp *gust.Response
		err  error
	}
	results := make(chan result, 3)
	for i := 0; i < 3; i++ {
		go func() {
			resp, err := a.Invoke(context.Background(), v, &gust.Request{
				ID: fmt.Sprintf("call-%d", i), Method: "POST", Path: "/", Body: []byte("hi"),
			})
			results <- result{resp, err}
		}()
	}
	eventually(t, "one call running on each node", func() bool {
		return ms[0].l.count() == 1 && ms[1].l.count() == 1 && ms[2].l.count() == 1
	})

	// No node has room: the fourth waits the queue timeout, then is
	// throttled.
	_, err := a.Invoke(context.Background(), v, &gust.Request{ID: "call-4", Method: "GET", Path: "/"})
	if gust.ErrorCode(err) != gust.ETHROTTLED {
		t.Fatalf("fourth call: err = %v, want throttled", err)
	}
	close(release)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		node, body, _ := strings.Cut(string(r.resp.Body), ":")
		if body != "hi" || r.resp.Header.Get("X-Node") != node {
			t.Fatalf("response %q header %v", r.resp.Body, r.resp.Header)
		}
		seen[node] = true
	}
	if len(seen) != 3 {
		t.Fatalf("calls ran on %v, want all three nodes", seen)
	}
	// The forwarded calls kept their invocation ids.
	for _, m := range ms {
		if id := m.l.ran[0]; !strings.HasPrefix(id, "call-") {
			t.Fatalf("node %s ran invocation %q", m.l.name, id)
		}
	}

	// Shares rebalance: with one node gone the share is two.
	if err := ms[2].c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two live nodes", allLive(ms[:2], 2))
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Invoke(context.Background(), v, &gust.Request{ID: fmt.Sprintf("again-%d", i), Method: "GET", Path: "/"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := ms[0].l.count() + ms[1].l.count(); got != 6 {
		t.Fatalf("%d calls ran on the two nodes, want 6", got)
	}
}

func TestForwardOverMaxPayload(t *testing.T) {
	ns := clustertest.Start(t, 3)
	release := make(chan struct{})
	v := &gust.Version{Function: "f", Number: 1, Spec: gust.Spec{
		MaxConcurrency: 1, QueueTimeout: gust.Duration(20 * time.Millisecond), Timeout: gust.Duration(5 * time.Second),
	}}
	ms := startMembers(t, ns, v, release)
	eventually(t, "three live nodes", allLive(ms, 3))
	a := ms[0].c
	done := make(chan error, 1)
	go func() {
		_, err := a.Invoke(context.Background(), v, &gust.Request{ID: "first", Method: "GET", Path: "/"})
		done <- err
	}()
	eventually(t, "first call running", func() bool { return ms[0].l.count() == 1 })
	big := make([]byte, ms[0].nc.MaxPayload()+1)
	_, err := a.Invoke(context.Background(), v, &gust.Request{ID: "big", Method: "POST", Path: "/", Body: big})
	if gust.ErrorCode(err) != gust.ETHROTTLED || !strings.Contains(gust.ErrorMessage(err), "max payload") {
		t.Fatalf("err = %v, want throttled saying the NATS max payload", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A node that cannot run a forwarded call (out of memory, or not yet aware
// of the version) refuses it, and the sender tries the next node: the call
// runs exactly once.
func TestForwardSkipsNodesThatCannotRun(t *testing.T) {
	ns := clustertest.Start(t, 3)
	release := make(chan struct{})
	close(release)
	v := &gust.Version{Function: "f", Number: 1, Spec: gust.Spec{MaxConcurrency: 10, Timeout: gust.Duration(5 * time.Second)}}
	ms := startMembers(t, ns, v, release)
	ms[0].l.full, ms[1].l.unknown = true, true
	eventually(t, "three live nodes", allLive(ms, 3))
	for i := 0; i < 5; i++ {
		resp, err := ms[0].c.Invoke(context.Background(), v, &gust.Request{ID: fmt.Sprintf("c%d", i), Method: "GET", Path: "/"})
		if err != nil {
			t.Fatal(err)
		}
		if node := resp.Header.Get("X-Node"); node != "n2" {
			t.Fatalf("call %d ran on %s", i, node)
		}
	}
	if ms[1].l.count() != 0 || ms[2].l.count() != 5 {
		t.Fatalf("runs: n1 %d, n2 %d", ms[1].l.count(), ms[2].l.count())
	}
}

// A call whose caller has gone while it queued here is not forwarded:
// another node would run it for nobody (forwarding drops the caller's
// cancellation so that a call, once sent, finishes).
func TestGoneCallerIsNotForwarded(t *testing.T) {
	ms, v := twoMembers(t)
	ms[0].l.queued = true
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ms[0].c.Invoke(ctx, v, &gust.Request{ID: "gone", Method: "GET", Path: "/"})
	if gust.ErrorCode(err) != gust.ETHROTTLED {
		t.Fatalf("err = %v, want the local throttle", err)
	}
	if n := ms[1].l.count(); n != 0 {
		t.Fatalf("the other node ran %d calls for a caller that had gone", n)
	}
}

// A node whose NATS connection is down does not forward: nats.go would
// hold the request and deliver it after the caller's timeout, so a
// retrying client would run it twice. The call stays here instead.
func TestNoForwardWhileDisconnected(t *testing.T) {
	ms, v := twoMembers(t)
	ms[0].l.full = true
	ms[0].nc.Close()
	_, err := ms[0].c.Invoke(context.Background(), v, &gust.Request{ID: "offline", Method: "GET", Path: "/"})
	if code := gust.ErrorCode(err); code != gust.ECAPACITY {
		t.Fatalf("err = %v (code %s), want this node's own answer (full)", err, code)
	}
	if n := ms[1].l.count(); n != 0 {
		t.Fatalf("the other node ran %d calls", n)
	}
}

// twoMembers starts a two-node cluster running one version whose calls
// block until the test ends.
func twoMembers(t *testing.T) ([]member, *gust.Version) {
	t.Helper()
	ns := clustertest.Start(t, 2)
	release := make(chan struct{})
	v := &gust.Version{Function: "f", Number: 1, Spec: gust.Spec{
		MaxConcurrency: 4, QueueTimeout: gust.Duration(50 * time.Millisecond), Timeout: gust.Duration(5 * time.Second),
	}}
	ms := startMembers(t, ns, v, release)
	t.Cleanup(func() { close(release) }) // before the members close
	eventually(t, "two live nodes", allLive(ms, 2))
	return ms, v
}

// lambdaError is an error with fields of its own, as the process driver's
// FunctionError is for a Lambda handler that raised.
type lambdaError struct{ fields map[string]any }

func (e *lambdaError) Error() string               { return "reported through the Runtime API" }
func (e *lambdaError) ErrorFields() map[string]any { return e.fields }

// A function error's own fields (Lambda's errorMessage, errorType and
// stackTrace) come back from the node that ran the call, so the caller's
// body is the one the other node would have written.
func TestForwardedErrorKeepsItsFields(t *testing.T) {
	ms, v := twoMembers(t)
	ms[0].l.full = true
	stack := json.RawMessage(`[{"path":"/var/task/main.go","line":12,"label":"handler"},"  File \"x.py\""]`)
	ms[1].l.fail = gust.WrapError(gust.EFUNCTION, &lambdaError{fields: map[string]any{
		"errorMessage": "boom <&>", "errorType": "ValueError", "stackTrace": stack,
	}}, "function error: ValueError: boom <&>")

	_, err := ms[0].c.Invoke(context.Background(), v, &gust.Request{ID: "raises", Method: "GET", Path: "/"})
	if n := ms[1].l.count(); n != 1 {
		t.Fatalf("the other node ran %d calls, want 1", n)
	}
	if gust.ErrorCode(err) != gust.EFUNCTION || gust.ErrorMessage(err) != "function error: ValueError: boom <&>" {
		t.Fatalf("err = %v (code %s)", err, gust.ErrorCode(err))
	}
	rec := httptest.NewRecorder()
	httperr.Write(rec, httptest.NewRequest("GET", "/fn/f", nil), err)
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("status %d", rec.Code)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	want := map[string]string{
		"error":        `"function error: ValueError: boom \u003c\u0026\u003e"`,
		"code":         `"function_error"`,
		"errorMessage": `"boom \u003c\u0026\u003e"`,
		"errorType":    `"ValueError"`,
		"stackTrace":   string(stack),
	}
	if len(body) != len(want) {
		t.Fatalf("body %s, want the fields %v", rec.Body, want)
	}
	for k, w := range want {
		if string(body[k]) != w {
			t.Errorf("%s = %s, want %s", k, body[k], w)
		}
	}

	// An error without fields of its own still comes back as error and
	// code alone.
	ms[1].l.fail = gust.Errorf(gust.ETIMEOUT, "function f timed out after 5s")
	_, err = ms[0].c.Invoke(context.Background(), v, &gust.Request{ID: "slow", Method: "GET", Path: "/"})
	rec = httptest.NewRecorder()
	httperr.Write(rec, httptest.NewRequest("GET", "/fn/f", nil), err)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"error":"function f timed out after 5s","code":"timeout"}` {
		t.Fatalf("body %s", got)
	}
}

// A forwarded call keeps the request as the gateway made it, its raw path
// (an escaped slash) included.
func TestForwardKeepsRawPath(t *testing.T) {
	ms, v := twoMembers(t)
	ms[0].l.full = true
	ms[1].l.fail = gust.Errorf(gust.EFUNCTION, "done") // answer at once
	_, _ = ms[0].c.Invoke(context.Background(), v, &gust.Request{ID: "raw", Method: "GET", Path: "/a/b", RawPath: "/a%2Fb", Query: "q=1"})
	ms[1].l.mu.Lock()
	defer ms[1].l.mu.Unlock()
	if len(ms[1].l.reqs) != 1 {
		t.Fatalf("the other node ran %d calls, want 1", len(ms[1].l.reqs))
	}
	if r := ms[1].l.reqs[0]; r.ID != "raw" || r.Path != "/a/b" || r.RawPath != "/a%2Fb" || r.Query != "q=1" {
		t.Fatalf("the other node ran %+v", r)
	}
}
