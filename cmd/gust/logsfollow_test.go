package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ctrl-C is how `gust logs -f` ends: it exits cleanly, not with
// "error: context canceled".
func TestLogsFollowEndsCleanlyOnInterrupt(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"time":"2026-11-27T00:00:00Z","function":"hello","version":1,"stream":"stdout","message":"first"}`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	a := &app{getenv: func(string) string { return "" }, now: func() time.Time { return testNow },
		tokenFile: filepath.Join(t.TempDir(), "admin.token")}
	root := newRoot(a)
	var out, errb syncBuffer
	root.SetArgs([]string{"--url", srv.URL, "--token", testToken, "logs", "hello", "-f"})
	root.SetOut(&out)
	root.SetErr(&errb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // before srv.Close, which waits for the connection to end
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "first") {
		if time.Now().After(deadline) {
			t.Fatalf("no line printed; out %q err %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // what Ctrl-C does through main's NotifyContext
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("logs -f after Ctrl-C: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("logs -f did not end after Ctrl-C")
	}
}
