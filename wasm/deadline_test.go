package wasm

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

// A callContext is a context whose deadline is its current call's: Done
// closes and context.AfterFunc registrations run at that deadline, and
// not at an earlier call's, whose timer it reuses.
func TestCallContextExpires(t *testing.T) {
	c := newCallContext()
	defer c.stop()
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))

	// A first call with a long timeout leaves the timer pending well past
	// the second call's deadline; a short first call leaves it due before
	// the second's. Either way the second call expires at its own.
	for _, first := range []time.Duration{time.Hour, time.Millisecond} {
		c.arm(parent, first)
		if first == time.Hour {
			stopped := context.AfterFunc(c, func() { t.Error("a stopped registration ran") })
			if !stopped() {
				t.Fatal("stop of a pending registration returned false")
			}
		}
		c.disarm()
		time.Sleep(5 * time.Millisecond) // a short first timer may fire while disarmed

		c.arm(parent, 20*time.Millisecond)
		if got := c.Value(ctxKey{}); got != "v" {
			t.Fatalf("Value = %v, want the parent's", got)
		}
		if d, ok := c.Deadline(); !ok || time.Until(d) > 20*time.Millisecond {
			t.Fatalf("Deadline = %v, %v", d, ok)
		}
		ran := make(chan struct{})
		context.AfterFunc(c, func() { close(ran) })
		// A second registration at once takes the path with its own stop.
		second := make(chan struct{})
		context.AfterFunc(c, func() { close(second) })
		cancelParent() // the parent's cancellation is not inherited
		if errors.Is(c.Err(), context.Canceled) {
			t.Fatal("canceled with its parent")
		}
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("not done past its deadline")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", c.Err())
		}
		if cause := context.Cause(c); !errors.Is(cause, context.DeadlineExceeded) {
			t.Fatalf("Cause = %v, not the call's own", cause)
		}
		<-ran
		<-second
		c.disarm()
		parent, cancelParent = context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	}
	cancelParent()
}

// A call that ends before its deadline leaves nothing behind: re-armed,
// the context is live again, and the timer going off after the call ended
// runs no registration of it.
func TestCallContextRearm(t *testing.T) {
	c := newCallContext()
	defer c.stop()
	for range 100 {
		c.arm(context.WithValue(context.Background(), ctxKey{}, "v"), time.Hour)
		stop := context.AfterFunc(c, func() { t.Error("a stopped registration ran") })
		if c.Err() != nil {
			t.Fatal("expired early")
		}
		stop()
		c.disarm()
	}
	c.arm(context.Background(), time.Hour)
	context.AfterFunc(c, func() { t.Error("a registration of a finished call ran") })
	c.disarm() // drops the registration left in place
	c.fire()   // as the timer would, after the call
	if c.Err() != nil {
		t.Fatal("expired while disarmed")
	}
	c.arm(context.Background(), time.Hour)
	select {
	case <-c.Done():
		t.Fatal("done at an earlier call's deadline")
	default:
	}
	if c.Value(ctxKey{}) != nil {
		t.Fatal("a value of an earlier call's parent")
	}
	c.disarm()
}

// Re-arming after an expiry gives a fresh channel and no error.
func TestCallContextAfterExpiry(t *testing.T) {
	c := newCallContext()
	defer c.stop()
	c.arm(context.Background(), time.Millisecond)
	<-c.Done()
	c.disarm()
	c.arm(context.Background(), time.Hour)
	if c.Err() != nil {
		t.Fatalf("Err after re-arm = %v", c.Err())
	}
	select {
	case <-c.Done():
		t.Fatal("done right after re-arm")
	default:
	}
	c.disarm()
}

func BenchmarkCallContext(b *testing.B) {
	c := newCallContext()
	defer c.stop()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c.arm(ctx, 10*time.Second)
		stop := context.AfterFunc(c, func() {})
		stop()
		c.disarm()
	}
}

// BenchmarkWithTimeout is what a call cost before callContext, for
// comparison with BenchmarkCallContext.
func BenchmarkWithTimeout(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		stop := context.AfterFunc(c, func() {})
		stop()
		cancel()
	}
}
