package invoke

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/pool"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTextInvoker(t *testing.T, cfg Config) (*Invoker, textDriver) {
	t.Helper()
	d := textDriver{release: make(chan struct{}), closed: new(atomic.Int32)}
	cfg.Drivers = []gust.Driver{d}
	cfg.Logger = quiet
	iv := New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = iv.Close(ctx)
	})
	return iv, d
}

// Every odd selector of /fn/NAME@REF is a 404 that names it and says why
// it names nothing; the plain forms still resolve.
func TestResolveSelectors(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t)
	iv, _ := newTextInvoker(t, Config{Registry: reg})
	for i := 0; i < 2; i++ {
		if _, err := reg.Deploy(ctx, "fn", gust.Spec{Runtime: gust.RuntimeWasm}, "reactor", []byte{'a' + byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		ref     string
		version int      // resolved, or 0 for ENOTFOUND
		want    []string // in the message
	}{
		{"", 2, nil},
		{"live", 2, nil},
		{"1", 1, nil},
		{"2", 2, nil},
		{"0", 0, []string{"no version 0", "numbered from 1"}},
		{"000", 0, []string{"no version 000", "numbered from 1"}},
		{"01", 0, []string{`"01"`, "leading zeros", "fn@1"}},
		{"-1", 0, []string{`"-1"`, "numbered from 1"}},
		{"3", 0, []string{"no version 3", "latest is version 2"}},
		{"99999999999999999999", 0, []string{"no version 99999999999999999999", "latest is version 2"}},
		{"canary", 0, []string{`no alias "canary"`}},
		{"Live", 0, []string{`"Live"`, "alias names are lowercase"}},
	} {
		v, err := iv.Resolve(ctx, "fn", tc.ref)
		if tc.version != 0 {
			if err != nil || v.Number != tc.version {
				t.Errorf("fn@%s: %v, %v; want version %d", tc.ref, v, err, tc.version)
			}
			continue
		}
		if gust.ErrorCode(err) != gust.ENOTFOUND {
			t.Errorf("fn@%s: %v (code %q), want not_found", tc.ref, err, gust.ErrorCode(err))
			continue
		}
		for _, w := range tc.want {
			if msg := gust.ErrorMessage(err); !strings.Contains(msg, w) {
				t.Errorf("fn@%s: message %q does not say %q", tc.ref, msg, w)
			}
		}
	}
}

// A version stored with more memory than the node's whole budget (the
// node restarted with a smaller --memory-budget) is refused with a
// non-retryable error naming both figures, not a 429: it is recorded as
// a call that did not run and was no cold start.
func TestVersionOverBudgetIsNotThrottled(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t)
	rec := &records{}
	iv, _ := newTextInvoker(t, Config{Registry: reg, Budget: pool.NewBudget(64), Recorder: rec})
	v, err := reg.Deploy(ctx, "big", gust.Spec{Runtime: gust.RuntimeWasm, MemoryMB: 128}, "reactor", []byte("fine"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		_, err = iv.Invoke(ctx, v, &gust.Request{Method: "GET", Path: "/"})
		if code := gust.ErrorCode(err); code != gust.EINVALID {
			t.Fatalf("err = %v (code %s), want invalid", err, code)
		}
		for _, w := range []string{"128 MB", "64 MB", "--memory", "--memory-budget"} {
			if msg := gust.ErrorMessage(err); !strings.Contains(msg, w) {
				t.Errorf("message %q does not name %q", msg, w)
			}
		}
	}
	// An async event is refused the same way, as an attempt that failed
	// (recorded), not as a wait for an instance.
	_, err = iv.InvokeStarted(ctx, v, &gust.Request{Method: "POST", Path: "/"}, func() error { return nil })
	if code := gust.ErrorCode(err); code != gust.EINVALID {
		t.Fatalf("InvokeStarted: %v (code %s), want invalid", err, code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != 3 {
		t.Fatalf("%d records, want 3", len(rec.got))
	}
	for _, r := range rec.got {
		if !r.NotRun || r.Cold || r.Status != gust.StatusError {
			t.Errorf("recorded as %+v, want not run, not cold, error", r)
		}
	}
}

// The pool's Throttled count is of callers refused with a throttle: an
// async event (InvokeStarted) that finds no free instance waits in its
// own queue and is no throttle; a synchronous caller refused is one.
func TestAsyncWaitIsNotCountedAsThrottle(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t)
	iv, d := newTextInvoker(t, Config{Registry: reg})
	spec := gust.Spec{Runtime: gust.RuntimeWasm, MaxConcurrency: 1, QueueTimeout: gust.Duration(time.Millisecond)}
	v, err := reg.Deploy(ctx, "narrow", spec, "reactor", []byte("block"))
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := iv.Invoke(ctx, v, &gust.Request{Method: "GET", Path: "/"})
		held <- err
	}()
	stats := func() gust.PoolStats {
		for _, s := range iv.Stats() {
			if s.Function == "narrow" {
				return s
			}
		}
		return gust.PoolStats{}
	}
	deadline := time.Now().Add(10 * time.Second)
	for stats().InFlight != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first call never got its instance")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		_, err := iv.InvokeStarted(ctx, v, &gust.Request{Method: "POST", Path: "/"}, func() error {
			t.Error("an event started while the only instance was busy")
			return nil
		})
		if gust.ErrorCode(err) != gust.ETHROTTLED {
			t.Fatalf("InvokeStarted: %v, want throttled", err)
		}
	}
	if s := stats(); s.Throttled != 0 {
		t.Errorf("async waits counted as %d throttles", s.Throttled)
	}
	if _, err := iv.Invoke(ctx, v, &gust.Request{Method: "GET", Path: "/"}); gust.ErrorCode(err) != gust.ETHROTTLED {
		t.Fatalf("Invoke: %v, want throttled", err)
	}
	if s := stats(); s.Throttled != 1 {
		t.Errorf("Throttled = %d after one caller was throttled, want 1", s.Throttled)
	}
	close(d.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}

// A driver that panics in a call (a bug) fails that call and leaves no
// instance or concurrency slot taken: the next call runs.
func TestDriverPanicInCallLeaksNothing(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t)
	iv, _ := newTextInvoker(t, Config{Registry: reg})
	spec := gust.Spec{Runtime: gust.RuntimeWasm, MaxConcurrency: 1, QueueTimeout: gust.Duration(time.Millisecond)}
	v, err := reg.Deploy(ctx, "panics", spec, "reactor", []byte("panic"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		var panicked any
		func() {
			defer func() { panicked = recover() }()
			_, err = iv.Invoke(ctx, v, &gust.Request{Method: "GET", Path: "/"})
		}()
		if panicked != nil {
			t.Fatalf("call %d: Invoke panicked: %v", i+1, panicked)
		}
		if code := gust.ErrorCode(err); code != gust.EINTERNAL {
			t.Fatalf("call %d: %v (code %s), want internal (not a throttle)", i+1, err, code)
		}
	}
	for _, s := range iv.Stats() {
		if s.InFlight != 0 || s.Busy != 0 || s.Idle != 0 {
			t.Errorf("after calls that panicked: %+v", s)
		}
	}
}
