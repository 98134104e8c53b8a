package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/meter"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// sleepGuest answers after ?ms= milliseconds (default 20) and names its
// instance.
const sleepGuest = `package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
	"github.com/gustfaas/gust/sdk"
)

var id string

func init() {
	newID := func() {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	newID()
	sdk.OnRestore(newID)
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil {
			ms = 20
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		w.Header().Set("X-Instance-Id", id)
		w.Write([]byte("done"))
	})
}

func main() {}
`

// burst sends n concurrent requests and counts the statuses.
func burst(t *testing.T, url string, n int) map[int]int {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := hc.Get(url)
			status := -1
			if err == nil {
				status = resp.StatusCode
				if status == 429 && resp.Header.Get("Retry-After") == "" {
					status = -429
				}
				resp.Body.Close()
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

func instancesOf(n *Node, fn string) int {
	total := 0
	for _, s := range n.Invoker().Stats() {
		if s.Function == fn {
			total += s.Idle + s.Busy + s.Starting
		}
	}
	return total
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestThrottlingDegradesGracefully(t *testing.T) {
	n, c := testNode(t, "", nil)
	code := wasmtest.Code(t, wasmtest.GoGuest(t, sleepGuest))
	deploy(t, c, "narrow", gust.Spec{MaxConcurrency: 2, QueueTimeout: gust.Duration(100 * time.Millisecond)}, code)
	deploy(t, c, "other", gust.Spec{}, wasmtest.Code(t, wasmtest.Hello(t)))

	var otherErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Another function keeps answering while narrow is throttling.
		for i := 0; i < 20; i++ {
			resp, err := http.Get(n.URL() + "/fn/other")
			if err != nil {
				otherErr = err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				otherErr = fmt.Errorf("other answered %d", resp.StatusCode)
				return
			}
		}
	}()
	counts := burst(t, n.URL()+"/fn/narrow?ms=80", 40)
	<-done
	if otherErr != nil {
		t.Fatal(otherErr)
	}
	for status, k := range counts {
		if status != 200 && status != 429 {
			t.Fatalf("burst of 40 got %d responses with status %d (all: %v)", k, status, counts)
		}
	}
	if counts[200] < 2 || counts[429] == 0 {
		t.Fatalf("burst of 40 at max concurrency 2: %v", counts)
	}
	r := do(t, "GET", n.URL()+"/fn/narrow?ms=1", nil)
	if r.status != 200 {
		t.Fatalf("after the burst: %d", r.status)
	}
}

func TestBurstScalesOutAndBackToZero(t *testing.T) {
	if testing.Short() {
		t.Skip("500 concurrent requests")
	}
	n, c := testNode(t, "", nil)
	code := wasmtest.Code(t, wasmtest.GoGuest(t, sleepGuest))
	deploy(t, c, "wide", gust.Spec{
		MemoryMB: 32, MaxConcurrency: 100, QueueTimeout: gust.Duration(2 * time.Second),
		IdleTimeout: gust.Duration(500 * time.Millisecond),
	}, code)
	counts := burst(t, n.URL()+"/fn/wide?ms=50", 500)
	for status, k := range counts {
		if status != 200 && status != 429 {
			t.Fatalf("burst of 500 got %d responses with status %d (all: %v)", k, status, counts)
		}
	}
	if counts[200] < 100 {
		t.Fatalf("burst of 500: %v", counts)
	}
	var peak int
	for _, s := range n.Invoker().Stats() {
		if s.Function == "wide" {
			peak = int(s.ColdStarts)
		}
	}
	if peak < 2 || peak > 100 {
		t.Fatalf("cold starts = %d, want between 2 and 100", peak)
	}
	waitFor(t, "scale to zero", 20*time.Second, func() bool { return instancesOf(n, "wide") == 0 })
}

func TestMinInstancesAreProvisioned(t *testing.T) {
	dir := t.TempDir()
	n, c := testNode(t, dir, nil)
	code := wasmtest.Code(t, wasmtest.Hello(t))
	deploy(t, c, "warm", gust.Spec{MinInstances: 2, IdleTimeout: gust.Duration(100 * time.Millisecond)}, code)
	waitFor(t, "2 provisioned instances", 20*time.Second, func() bool { return instancesOf(n, "warm") == 2 })
	if r := do(t, "GET", n.URL()+"/fn/warm", nil); r.status != 200 {
		t.Fatal(r.status)
	}
	time.Sleep(400 * time.Millisecond) // several idle timeouts
	if got := instancesOf(n, "warm"); got != 2 {
		t.Fatalf("provisioned instances reaped: %d left", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	n.Close(ctx)
	cancel()
	// After a restart they are provisioned again, before any request.
	n2, _ := testNode(t, dir, nil)
	waitFor(t, "2 provisioned instances after restart", 20*time.Second, func() bool { return instancesOf(n2, "warm") == 2 })
}

func TestMemoryBudgetReapsOtherFunctionsIdleInstances(t *testing.T) {
	n, c := testNode(t, "", func(cfg *Config) { cfg.MemoryBudget = 64 })
	code := wasmtest.Code(t, wasmtest.Hello(t))
	deploy(t, c, "first", gust.Spec{MemoryMB: 32}, code)
	deploy(t, c, "second", gust.Spec{MemoryMB: 32}, code)
	deploy(t, c, "third", gust.Spec{MemoryMB: 32}, code)
	for _, fn := range []string{"first", "second", "third"} {
		if r := do(t, "GET", n.URL()+"/fn/"+fn, nil); r.status != 200 {
			t.Fatalf("%s: %d %s", fn, r.status, r.body)
		}
	}
	// Budget 64 MB fits two 32 MB instances: the third start reaped the
	// least recently used idle instance, first's.
	if got := instancesOf(n, "first"); got != 0 {
		t.Fatalf("first still has %d instances", got)
	}
	if instancesOf(n, "second") != 1 || instancesOf(n, "third") != 1 {
		t.Fatalf("stats: %+v", n.Invoker().Stats())
	}
	// A function bigger than the whole budget is refused at deploy with a
	// clear error (budget_test.go has a version stored before a restart).
	_, err := c.Deploy(context.Background(), "huge", gust.Spec{MemoryMB: 128}, "huge.wasm", bytes.NewReader(code))
	if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("deploy of a function bigger than the budget: %v (code %q), want invalid naming the budget", err, gust.ErrorCode(err))
	}
}

func TestAliasesAndCanary(t *testing.T) {
	n, c := testNode(t, "", nil)
	ctx := context.Background()
	code := wasmtest.Code(t, wasmtest.Hello(t))
	deploy(t, c, "app", gust.Spec{Env: map[string]string{"V": "one"}}, code)
	deploy(t, c, "app", gust.Spec{Env: map[string]string{"V": "two"}}, code)
	if _, err := c.SetAlias(ctx, "app", "live", []gust.AliasTarget{{Version: 1, Weight: 80}, {Version: 2, Weight: 20}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetAlias(ctx, "app", "stable", []gust.AliasTarget{{Version: 1, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetAlias(ctx, "app", "bad", []gust.AliasTarget{{Version: 1, Weight: 50}}); gust.ErrorCode(err) != gust.EINVALID {
		t.Fatalf("weights summing to 50: %v", err)
	}
	if _, err := c.SetAlias(ctx, "app", "bad", []gust.AliasTarget{{Version: 9, Weight: 100}}); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("alias to a missing version: %v", err)
	}
	ones := 0
	const N = 400
	for i := 0; i < N; i++ {
		r := do(t, "GET", n.URL()+"/fn/app/env", nil)
		if strings.Contains(string(r.body), "V=one") {
			ones++
		}
	}
	// 80% expected; a binomial with n=400 stays within ±10 points with
	// overwhelming probability.
	if ones < N*70/100 || ones > N*90/100 {
		t.Fatalf("version 1 served %d of %d requests, want about 80%%", ones, N)
	}
	for i := 0; i < 20; i++ {
		if r := do(t, "GET", n.URL()+"/fn/app@stable/env", nil); !strings.Contains(string(r.body), "V=one") {
			t.Fatalf("@stable served %q", r.body)
		}
	}
	// Rollback moves live wholly; the version no alias names is drained.
	if _, err := c.Rollback(ctx, "app", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAlias(ctx, "app", "stable"); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", n.URL()+"/fn/app/env", nil); !strings.Contains(string(r.body), "V=two") {
		t.Fatalf("after rollback: %q", r.body)
	}
	waitFor(t, "version 1 drained", 10*time.Second, func() bool {
		for _, s := range n.Invoker().Stats() {
			if s.Function == "app" && s.Version == 1 {
				return false
			}
		}
		return true
	})
	// A version is still addressable directly.
	if r := do(t, "GET", n.URL()+"/fn/app@1/env", nil); !strings.Contains(string(r.body), "V=one") {
		t.Fatalf("@1 after drain: %q", r.body)
	}
}

func TestUsageAndMetrics(t *testing.T) {
	n, c := testNode(t, "", nil)
	ctx := context.Background()
	deploy(t, c, "metered", gust.Spec{MemoryMB: 64}, wasmtest.Code(t, wasmtest.Hello(t)))
	for i := 0; i < 5; i++ {
		if r := do(t, "GET", n.URL()+"/fn/metered", nil); r.status != 200 {
			t.Fatal(r.status)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := n.Meter().Flush(fctx); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Usage(ctx, client.UsageQuery{Function: "metered", Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var rep meter.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	tot := rep.Total
	if tot.Invocations != 5 || tot.ColdStarts != 1 || tot.Errors != 0 || tot.BilledMs < 5 || tot.GBSeconds <= 0 || tot.EstimatedCost <= 0 {
		t.Fatalf("usage total = %+v", tot)
	}
	// 64 MB for the billed ms: GB-s = ms/1000 * 64/1024.
	if want := float64(tot.BilledMs) / 1000 * 64 / 1024; tot.GBSeconds < want*0.999 || tot.GBSeconds > want*1.001 {
		t.Fatalf("GB-s = %v, want %v", tot.GBSeconds, want)
	}
	m := do(t, "GET", n.URL()+"/metrics", nil)
	for _, want := range []string{
		`gust_invocations_total{function="metered",status="ok"} 5`,
		`gust_cold_starts_total{function="metered"} 1`,
		`gust_instances{function="metered",state="idle",version="1"} 1`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Fatalf("metrics lack %q:\n%s", want, m.body)
		}
	}
}
