package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/stats"
)

// topServer serves the real stats routes (over a fake clock) and a canned
// status document, on 127.0.0.1.
func topServer(t *testing.T) *httptest.Server {
	t.Helper()
	st := stats.New(stats.Config{Now: func() time.Time { return testNow }})
	for i := 0; i < 50; i++ {
		st.Record(&gust.Invocation{Function: "hello", Start: testNow.Add(-3 * time.Second), Duration: 2 * time.Millisecond, Status: gust.StatusOK, Cold: i == 0})
	}
	st.Record(&gust.Invocation{Function: "hello", Start: testNow.Add(-2 * time.Second), Duration: time.Millisecond, Status: gust.StatusError})
	st.Record(&gust.Invocation{Function: "busy", Start: testNow.Add(-2 * time.Second), Status: gust.StatusThrottled})
	mux := http.NewServeMux()
	for p, h := range st.Routes() {
		mux.Handle(p, h)
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"version": "test", "memoryBudgetMB": 4096, "memoryUsedMB": 384, "pools": []gust.PoolStats{
			{Function: "hello", Version: 1, Idle: 1, Busy: 1},
			{Function: "hello", Version: 2, Starting: 1},
			{Function: "idle", Version: 1, Idle: 2, Waiting: 0},
		}})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestTopOnce(t *testing.T) {
	srv := topServer(t)
	r := runCLI(t, srv.URL, "", "top", "--once")
	if r.err != nil {
		t.Fatalf("top: %v\n%s", r.err, r.stderr)
	}
	t.Logf("frame:\n%s", r.stdout)
	if strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("--once wrote screen control: %q", r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "window 10s") || !strings.Contains(lines[0], "memory 384/4096 MB") {
		t.Fatalf("frame:\n%s", r.stdout)
	}
	want := [][]string{
		{"FUNCTION", "REQ/S", "P50", "P99", "INVOCATIONS", "ERRORS", "THROTTLES", "COLD", "INSTANCES", "BUSY", "WAITING"},
		// 51 invocations in the 10s window; 3 instances over two versions.
		{"hello", "5.10"}, {"busy", "0.00", "-", "-", "0", "0", "1", "0", "0", "0", "0"},
		{"idle", "0.00", "-", "-", "0", "0", "0", "0", "2", "0", "0"},
	}
	for i, w := range want {
		got := strings.Fields(lines[2+i])
		for j, cell := range w {
			if j >= len(got) || got[j] != cell {
				t.Fatalf("line %d = %q, want %v", 2+i, lines[2+i], w)
			}
		}
	}
	hello := strings.Fields(lines[3])
	if hello[4] != "51" || hello[5] != "1" || hello[7] != "1" || hello[8] != "3" || !strings.HasSuffix(hello[3], "ms") {
		t.Fatalf("hello row = %q", lines[3])
	}

	if r := runCLI(t, srv.URL, "", "top", "--once", "--window", "2h"); gust.ErrorCode(r.err) != gust.EINVALID {
		t.Fatalf("2h window: %v", r.err)
	}
}

func TestTopLoopRedrawsUntilCancelled(t *testing.T) {
	srv := topServer(t)
	c := client.New(srv.URL, testToken)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runTop(ctx, c, &out, 10*time.Second, 100*time.Millisecond, func() time.Time { return testNow })
	}()
	deadline := time.After(10 * time.Second)
	for strings.Count(out.String(), ansiClear) < 2 {
		select {
		case <-deadline:
			t.Fatalf("no second frame:\n%q", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.HasPrefix(s, ansiHideCursor+ansiClear) || !strings.HasSuffix(s, ansiShowCursor) || !strings.Contains(s, "hello") {
		t.Fatalf("screen output = %q", s)
	}

	// A server that goes away is shown, not fatal.
	srv.Close()
	ctx, cancel = context.WithCancel(context.Background())
	out.Reset()
	go func() { done <- runTop(ctx, c, &out, 10*time.Second, 100*time.Millisecond, time.Now) }()
	for !strings.Contains(out.String(), "(retrying)") {
		select {
		case <-deadline:
			t.Fatalf("no retry frame:\n%q", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe to write from the loop and read from
// the test.
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

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
