package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEmbeddedRestartKeepsKV(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	b, err := Start(ctx, Config{DataDir: dir, SyncAlways: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Embedded() || b.ClientURL() != "" {
		t.Fatalf("Embedded() = %v, ClientURL() = %q; want embedded without a listener", b.Embedded(), b.ClientURL())
	}
	kv, err := b.EnsureKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close() // idempotent

	b, err = Start(ctx, Config{DataDir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kv, err = b.EnsureKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if string(e.Value()) != "v1" {
		t.Fatalf("after restart got %q, want v1", e.Value())
	}
	if got := kv.Bucket(); got != "t" {
		t.Fatalf("bucket %q", got)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Config().Replicas; r != 1 {
		t.Fatalf("replicas %d, want 1", r)
	}
}

func TestEmbeddedListen(t *testing.T) {
	ctx := testCtx(t)
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := b.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL() = %q", url)
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := b.Conn().SubscribeSync("hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("hello", []byte("world")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "world" {
		t.Fatalf("got %q", m.Data)
	}
}

func TestEmbeddedNeedsDataDirAndOneReplica(t *testing.T) {
	ctx := testCtx(t)
	if _, err := Start(ctx, Config{Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), "data dir") {
		t.Fatalf("no data dir: err = %v", err)
	}
	if _, err := Start(ctx, Config{DataDir: t.TempDir(), Replicas: 3, Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), "cluster") {
		t.Fatalf("replicas 3 embedded: err = %v", err)
	}
}

// runServer starts a nats-server the way an operator would, on a random
// port of 127.0.0.1.
func runServer(t *testing.T, jetStream bool) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true}
	if jetStream {
		opts.JetStream = true
		opts.StoreDir = t.TempDir()
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

func TestExternal(t *testing.T) {
	ctx := testCtx(t)
	srv := runServer(t, true)
	b, err := Start(ctx, Config{URL: srv.ClientURL(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Embedded() || b.ClientURL() != srv.ClientURL() {
		t.Fatalf("Embedded() = %v, ClientURL() = %q", b.Embedded(), b.ClientURL())
	}
	obs, err := b.EnsureObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "code"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "a", []byte("xyz")); err != nil {
		t.Fatal(err)
	}
	got, err := obs.GetBytes(ctx, "a")
	if err != nil || string(got) != "xyz" {
		t.Fatalf("GetBytes = %q, %v", got, err)
	}
	// Ensuring again with the same config is a no-op, not an error.
	if _, err := b.EnsureObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "code"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
}

func TestExternalCommaSeparatedURLs(t *testing.T) {
	ctx := testCtx(t)
	srv := runServer(t, true)
	b, err := Start(ctx, Config{URL: deadURL(t) + "," + srv.ClientURL(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
}

// deadURL returns a NATS URL of a port on 127.0.0.1 that nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "nats://" + addr
}

func TestExternalNothingListening(t *testing.T) {
	ctx := testCtx(t)
	url := deadURL(t)
	_, err := Start(ctx, Config{URL: url, ConnectTimeout: time.Second, Logger: quietLogger()})
	if err == nil {
		t.Fatal("Start succeeded with nothing listening")
	}
	if !strings.Contains(err.Error(), "connect to NATS at "+url) {
		t.Fatalf("error does not say what failed: %v", err)
	}
}

func TestExternalWithoutJetStream(t *testing.T) {
	ctx := testCtx(t)
	srv := runServer(t, false)
	_, err := Start(ctx, Config{URL: srv.ClientURL(), ConnectTimeout: 2 * time.Second, Logger: quietLogger()})
	if err == nil {
		t.Fatal("Start succeeded on a NATS without JetStream")
	}
	if !strings.Contains(err.Error(), "no JetStream") {
		t.Fatalf("error does not say JetStream is missing: %v", err)
	}
}

func TestReconnectDelay(t *testing.T) {
	want := []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for i, w := range want {
		if got := reconnectDelay(i); got != w {
			t.Errorf("reconnectDelay(%d) = %s, want %s", i, got, w)
		}
	}
	if got := reconnectDelay(1000); got != maxReconnectDelay {
		t.Errorf("reconnectDelay(1000) = %s, want %s", got, maxReconnectDelay)
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("nats://u:secret@h1:4222, nats://h2:4222,tls://tok@h3")
	want := "nats://[redacted]@h1:4222,nats://h2:4222,tls://[redacted]@h3"
	if got != want {
		t.Fatalf("redactURL = %q, want %q", got, want)
	}
}
