package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// reliabilityTotal is how many async invocations the client attempts.
const reliabilityTotal = 10000

// gustProc is a `gust serve` process of the real binary.
type gustProc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	logs *bytes.Buffer
	mu   sync.Mutex
}

// startGust runs `gust serve --data dir` and waits until it says where it
// listens.
func startGust(t *testing.T, ctx context.Context, bin, dir string, args ...string) *gustProc {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--memory-budget", "512", "--log-level", "warn"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gustProc{cmd: cmd, done: make(chan struct{}), logs: &bytes.Buffer{}}
	urlRE := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			p.mu.Lock()
			if p.logs.Len() < 1<<20 {
				p.logs.WriteString(sc.Text() + "\n")
			}
			p.mu.Unlock()
			if m := urlRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case p.url = <-found:
	case <-p.done:
		t.Fatalf("gust serve exited before listening:\n%s", p.log())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("gust serve did not say where it listens:\n%s", p.log())
	}
	return p
}

func (p *gustProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *gustProc) kill(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// TestAsyncSurvivesSIGKILL: 10,000 async invocations of a no-op function;
// the gust process is SIGKILLed part way through; after a restart on the
// same data dir every invocation that was answered 202 completes, at least
// once. The ones that ran more than once (started before the kill, not yet
// recorded) are reported.
func TestAsyncSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gust binary and runs 10,000 invocations")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "gust")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	code := wasmtest.Code(t, wasmtest.HelloC(t))
	dir := filepath.Join(tmp, "data")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Metering off: it is not what is tested, and it would halve the pace.
	args := []string{"--metering=false"}
	p := startGust(t, ctx, bin, dir, args...)
	defer func() { p.kill(syscall.SIGTERM) }()
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	c := client.New(p.url, token)
	if _, err := c.Deploy(ctx, "noop", gust.Spec{MemoryMB: 16, MaxConcurrency: 8}, "noop.wasm", bytes.NewReader(code)); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		accepted []string
		refused  atomic.Int64
		next     atomic.Int64
		url      atomic.Value
	)
	url.Store(p.url)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var down atomic.Bool
	// post sends invocations until limit have been accepted in all, or
	// until the server is down (after the kill).
	post := func(limit int) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					mu.Lock()
					n := len(accepted)
					mu.Unlock()
					if n >= limit {
						return
					}
					i := next.Add(1)
					resp, err := hc.Post(url.Load().(string)+"/async/noop", "text/plain", strings.NewReader(fmt.Sprint(i)))
					if err != nil {
						refused.Add(1)
						if down.Load() {
							return
						}
						time.Sleep(5 * time.Millisecond)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						refused.Add(1)
						continue
					}
					id := resp.Header.Get("X-Gust-Invocation-Id")
					mu.Lock()
					accepted = append(accepted, id)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}

	// First half, with the kill landing while requests are in flight and
	// the workers are busy.
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for ctx.Err() == nil {
			mu.Lock()
			n := len(accepted)
			mu.Unlock()
			if n >= reliabilityTotal*4/10 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		down.Store(true)
		p.kill(syscall.SIGKILL)
	}()
	post(reliabilityTotal)
	<-killed
	mu.Lock()
	beforeKill := len(accepted)
	mu.Unlock()
	t.Logf("accepted %d before the SIGKILL; %d requests refused as it went down", beforeKill, refused.Load())

	p = startGust(t, ctx, bin, dir, args...)
	down.Store(false)
	url.Store(p.url)
	c = client.New(p.url, token)
	post(reliabilityTotal)
	mu.Lock()
	ids := append([]string(nil), accepted...)
	mu.Unlock()
	t.Logf("accepted %d in all (%d requests); %d refused", len(ids), next.Load(), refused.Load())
	if len(ids) < reliabilityTotal {
		t.Fatalf("only %d accepted", len(ids))
	}

	// Every accepted invocation completes. Redeliveries of events held
	// by the killed process wait out the AckWait (30s).
	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	if len(pending) != len(ids) {
		t.Fatalf("%d accepted ids are not unique", len(ids)-len(pending))
	}
	dups := 0
	var dupIDs []string
	deadline := time.Now().Add(2 * time.Minute)
	for len(pending) > 0 && time.Now().Before(deadline) {
		for id := range pending {
			st, err := c.Invocation(ctx, id)
			if err != nil {
				t.Fatalf("invocation %s: %v", id, err)
			}
			if !st.Final() {
				continue
			}
			if st.Status != "succeeded" {
				t.Fatalf("invocation %s ended %s: %s", id, st.Status, st.Error)
			}
			if st.Attempts > 1 {
				dups++
				if len(dupIDs) < 5 {
					dupIDs = append(dupIDs, id)
				}
			}
			delete(pending, id)
		}
		if len(pending) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if len(pending) > 0 {
		t.Fatalf("%d of %d accepted invocations never completed\n%s", len(pending), len(ids), p.log())
	}
	t.Logf("all %d accepted invocations succeeded; %d ran more than once (started before the kill, finished after): e.g. %v", len(ids), dups, dupIDs)
}
