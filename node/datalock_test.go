package node

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// Two nodes on one data dir would run two NATS servers over one file
// store: the second is refused with a message that says why, and once the
// first is closed the dir can be used again.
func TestOneNodePerDataDir(t *testing.T) {
	dir := t.TempDir()
	first, _ := testNode(t, dir, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", MemoryBudget: 1024, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if n, err := Start(ctx, cfg); err == nil {
		n.Close(ctx)
		t.Fatal("a second node started on a data dir in use")
	} else if gust.ErrorCode(err) != gust.EUNAVAILABLE || !strings.Contains(err.Error(), "in use by another gust process") {
		t.Fatalf("second node: %v", err)
	}
	// The refused start changed nothing: the first node still serves.
	if r := do(t, "GET", first.URL()+"/healthz", nil); r.status != 200 {
		t.Fatalf("first node after the refused start: %d", r.status)
	}
	first.Close(ctx)
	testNode(t, dir, nil)
}
