package invoke

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/registry"
)

// textDriver's functions answer their code as text; a call to one whose
// code is "block" waits until release is closed or its context ends, one
// whose code is "broken" fails to start, and one whose code is "panic"
// panics in Invoke (a driver's bug).
type textDriver struct {
	release chan struct{}
	closed  *atomic.Int32 // modules closed
}

func (textDriver) Runtime() string { return gust.RuntimeWasm }
func (d textDriver) Load(_ context.Context, _ *gust.Version, code []byte, _ gust.LogSink) (gust.Module, error) {
	return &textModule{d: d, text: string(code)}, nil
}

type textModule struct {
	d    textDriver
	text string
}

func (*textModule) Shape() string { return "reactor" }
func (m *textModule) NewInstance(context.Context) (gust.Instance, error) {
	if m.text == "broken" {
		return nil, gust.Errorf(gust.EFUNCTION, "the instance trapped in its init")
	}
	return textInstance{m}, nil
}
func (m *textModule) Close(context.Context) error {
	m.d.closed.Add(1)
	return nil
}

type textInstance struct{ m *textModule }

func (i textInstance) Invoke(ctx context.Context, _ *gust.Request) (*gust.Response, error) {
	if i.m.text == "panic" {
		panic("a driver bug")
	}
	if i.m.text == "block" {
		select {
		case <-i.m.d.release:
		case <-ctx.Done():
		}
	}
	return &gust.Response{Status: 200, Body: []byte(i.m.text)}, nil
}
func (textInstance) Close(context.Context) error { return nil }

// testRegistry is a real registry on an embedded NATS in a temp dir.
func testRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg, err := registry.Open(ctx, b.JetStream(), registry.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return reg
}

// A function removed and deployed again numbers its versions from 1
// again: its new version 1 runs its new code, not the warm pool of the old
// one, whether the deploy hands its module over (Adopt) or not.
func TestRedeployAfterRemoveRunsNewCode(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t)
	d := textDriver{release: make(chan struct{}), closed: new(atomic.Int32)}
	iv := New(Config{Registry: reg, Drivers: []gust.Driver{d}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer iv.Close(ctx)
	spec := gust.Spec{Runtime: gust.RuntimeWasm}
	call := func() string {
		t.Helper()
		v, err := iv.Resolve(ctx, "foo", "")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := iv.Invoke(ctx, v, &gust.Request{Method: "GET", Path: "/"})
		if err != nil {
			t.Fatal(err)
		}
		return string(resp.Body)
	}
	for i, code := range []string{"first", "second", "third"} {
		if i > 0 {
			if err := reg.Delete(ctx, "foo"); err != nil {
				t.Fatal(err)
			}
			iv.Reconcile(ctx)
		}
		v, err := reg.Deploy(ctx, "foo", spec, "reactor", []byte(code))
		if err != nil {
			t.Fatal(err)
		}
		if v.Number != 1 {
			t.Fatalf("deploy %d made version %d", i, v.Number)
		}
		if i == 2 { // the deploy path: a module prepared ahead, adopted
			m, err := iv.Prepare(ctx, "foo", 1, spec.WithDefaults(), []byte(code))
			if err != nil {
				t.Fatal(err)
			}
			iv.Adopt(v, 1, m)
		}
		if got := call(); got != code {
			t.Fatalf("deploy %d: foo answers %q, want %q", i, got, code)
		}
	}
	// The replaced pools were drained and their modules closed.
	deadline := time.Now().Add(5 * time.Second)
	for d.closed.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := d.closed.Load(); n < 2 {
		t.Fatalf("%d modules of replaced versions closed, want 2", n)
	}
}

// Close waits for pools already retired (a rolled-back version still
// finishing a call), and forces them once its context ends, so no module
// stays open under a driver that is closed next.
func TestCloseCoversRetiredPools(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	d := textDriver{release: make(chan struct{}), closed: new(atomic.Int32)}
	defer close(d.release)
	iv := New(Config{Registry: reg, Drivers: []gust.Driver{d}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	spec := gust.Spec{Runtime: gust.RuntimeWasm, Timeout: gust.Duration(10 * time.Minute)}
	v1, err := reg.Deploy(ctx, "foo", spec, "reactor", []byte("block"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = iv.Invoke(ctx, v1, &gust.Request{Method: "GET", Path: "/"})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s := iv.Stats(); len(s) == 1 && s[0].InFlight == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the call never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := reg.Deploy(ctx, "foo", spec, "reactor", []byte("2")); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(RetireAfter + time.Second))
	iv.Reconcile(ctx) // version 1 is retired and drains on its own
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := iv.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if d.closed.Load() == 0 {
		t.Fatal("Close returned with the retired version's module still open")
	}
}
