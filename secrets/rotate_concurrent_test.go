package secrets_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/secrets"
)

// Two key rotations at once (two admins, or a retry over the first call)
// leave every secret readable: the second waits for the first.
func TestConcurrentRotate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	b, err := broker.Start(ctx, broker.Config{DataDir: filepath.Join(dir, "nats"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keys, _, err := secrets.LoadKeyring(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := secrets.Open(ctx, b.JetStream(), 1, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := s.Set(ctx, fmt.Sprintf("S%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if id, n, err := s.RotateKey(ctx); err != nil {
				t.Errorf("rotate: %s %d %v", id, n, err)
			}
		}()
	}
	wg.Wait()
	bad := 0
	for i := range 200 {
		if _, err := s.Values(ctx, []string{fmt.Sprintf("S%d", i)}); err != nil {
			bad++
			if bad < 3 {
				t.Log(err)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of 200 secrets unreadable after two concurrent rotations", bad)
	}
}
