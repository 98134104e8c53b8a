package secrets

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gustfaas/gust/broker"
)

// A secret set while the key is rotated, sealed with the old key, is
// re-encrypted before the old key is dropped: it opens after a restart.
func TestRotateKeyKeepsSecretSetMeanwhile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	b, err := broker.Start(ctx, broker.Config{DataDir: filepath.Join(dir, "nats"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keys, _, err := LoadKeyring(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, b.JetStream(), 1, keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "A", []byte("a")); err != nil {
		t.Fatal(err)
	}
	// The next Set stops after it has sealed its value (now stamps it)
	// and before it stores it.
	inSet, release := make(chan struct{}), make(chan struct{})
	armed := true
	s.now = func() time.Time {
		if armed {
			armed = false
			close(inSet)
			<-release
		}
		return time.Now()
	}
	setDone := make(chan error, 1)
	go func() { setDone <- s.Set(ctx, "B", []byte("b")) }()
	<-inSet
	rotDone := make(chan error, 1)
	go func() { _, _, err := s.RotateKey(ctx); rotDone <- err }()
	// Let the rotation go as far as it can while B is in flight: to its
	// end, or until it waits for B's Set.
	waiting := func() bool {
		if s.rotating.TryRLock() {
			s.rotating.RUnlock()
			return false
		}
		return true
	}
	var rotErr error
	rotated := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
		select {
		case rotErr = <-rotDone:
			rotated = true
		default:
		}
		if rotated || waiting() {
			break
		}
	}
	close(release)
	if err := <-setDone; err != nil {
		t.Fatal(err)
	}
	if !rotated {
		rotErr = <-rotDone
	}
	if rotErr != nil {
		t.Fatal(rotErr)
	}
	// A restart: the keyring as the file holds it.
	keys2, _, err := LoadKeyring(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, b.JetStream(), 1, keys2)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := s2.Values(ctx, []string{"A", "B"})
	if err != nil || vals["A"] != "a" || vals["B"] != "b" {
		t.Fatalf("after rotation and restart: %v %v", vals, err)
	}
}
