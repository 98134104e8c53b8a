package wasm

import (
	"context"
	"sync"
	"time"
)

// callContext is the context of a reactor's warm calls: one per instance,
// armed with a deadline at the start of each call and disarmed at its end.
//
// A context.WithTimeout per call, with wazero's close-on-done registration
// on top (context.AfterFunc), cost about fourteen allocations, a timer
// added to and removed from the runtime's heap, a lazily made channel and
// a map of children on every warm call. Here the channel, the timer and
// the first registration's stop function are made once per instance, and
// the timer is not touched per call: it stays pending from one call to
// the next, and when it fires before the current deadline (it was set for
// an earlier call's) it sets itself again for the rest. An idle instance's
// timer fires once and then stays stopped. What a call still allocates
// (six objects) is context.AfterFunc's and wazero's own.
//
// It behaves as a context whose deadline is the call's while armed: Done
// is closed and Err is context.DeadlineExceeded once the deadline passes,
// and functions registered with context.AfterFunc (wazero closes the
// module with one) run then. Values come from the context the call was
// given; its cancellation is not inherited (a client that hangs up does
// not kill a warm instance mid-call, as before).
//
// A callContext must not be kept past the call it was armed for: the next
// call re-arms it. That holds for wazero's registration (stopped when the
// guest call returns) and for WASI functions; modules that import gust's
// host functions, which make outbound requests with the context, are
// given a context of their own per call instead (see InvokeTimeout).
type callContext struct {
	mu       sync.Mutex
	parent   context.Context // values only
	deadline time.Time
	armed    bool
	done     chan struct{} // closed at expiry; replaced when re-armed after one
	err      error
	// slot is the one registration that needs no allocation (wazero makes
	// one per guest call, and the calls of an invocation run one after
	// another); more at once go to extra, each with a stop of its own.
	slot     func()
	slotStop func() bool // c.stopSlot, made once
	extra    map[*func()]struct{}
	timer    *time.Timer
	due      time.Time // when the pending timer fires; zero if none is
}

func newCallContext() *callContext {
	c := &callContext{done: make(chan struct{})}
	c.slotStop = c.stopSlot
	return c
}

// arm starts a call under parent with the given timeout.
func (c *callContext) arm(parent context.Context, timeout time.Duration) {
	now := time.Now()
	deadline := now.Add(timeout)
	c.mu.Lock()
	c.parent, c.deadline, c.armed = parent, deadline, true
	if c.err != nil {
		c.err = nil
		c.done = make(chan struct{})
	}
	switch {
	case c.timer == nil:
		c.timer = time.AfterFunc(timeout, c.fire)
		c.due = deadline
	case c.due.IsZero() || c.due.After(deadline):
		c.timer.Reset(timeout)
		c.due = deadline
	}
	c.mu.Unlock()
}

// disarm ends the call and reports whether its deadline passed before
// that: the registrations (wazero's, which closes the module) have then
// run or are running. Registrations still in place (none, when the callers
// keep to the context package's rules) are dropped unrun.
func (c *callContext) disarm() (expired bool) {
	c.mu.Lock()
	c.armed = false
	c.slot, c.extra = nil, nil
	expired = c.err != nil
	if !expired {
		// Once expired, fire may still be running the registrations, which
		// read Value; the instance is dead then and is never re-armed.
		c.parent = nil
	}
	c.mu.Unlock()
	return expired
}

// stop stops the timer for good, when the instance is closed.
func (c *callContext) stop() {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
		c.due = time.Time{}
	}
	c.mu.Unlock()
}

// fire runs when the timer goes off: at the current call's deadline, or
// earlier if the timer was set for an earlier call.
func (c *callContext) fire() {
	c.mu.Lock()
	if !c.armed || c.err != nil {
		c.due = time.Time{}
		c.mu.Unlock()
		return
	}
	if d := time.Until(c.deadline); d > 0 {
		c.timer.Reset(d)
		c.due = c.deadline
		c.mu.Unlock()
		return
	}
	c.due = time.Time{}
	c.err = context.DeadlineExceeded
	close(c.done)
	slot, extra := c.slot, c.extra
	c.slot, c.extra = nil, nil
	c.mu.Unlock()
	// The context package's own registrations only start goroutines or
	// set flags; running them here keeps expiry to this one goroutine.
	if slot != nil {
		slot()
	}
	for f := range extra {
		(*f)()
	}
}

func (c *callContext) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, true
}

func (c *callContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

func (c *callContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *callContext) Value(key any) any {
	c.mu.Lock()
	p := c.parent
	c.mu.Unlock()
	if p == nil || key == cancelCtxKey {
		// The parent's cancellation is not this context's: context.Cause
		// must not find it (context.WithoutCancel hides it the same way,
		// but allocates on every Value).
		return nil
	}
	return p.Value(key)
}

// cancelCtxKey is the key under which the context package looks up a
// context's nearest cancelable ancestor (context.Cause asks for it); it is
// unexported, so it is learnt once by asking Cause of a probe. Should
// Cause stop asking, it stays nil and matches no lookup.
var cancelCtxKey = func() any {
	p := &keyProbe{Context: context.Background()}
	_ = context.Cause(p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Err() error { return context.Canceled } // Cause asks only then

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}

// AfterFunc lets context.AfterFunc register f with this context directly
// (its afterFuncer interface), instead of with a child per call. The stop
// function of the first registration is made once: the context package
// calls each stop at most once, and only while its registration is the
// one in place.
func (c *callContext) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	if c.slot == nil {
		c.slot = f
		return c.slotStop
	}
	// Not &f: taking the parameter's address would move it to the heap
	// on every call, the common one included.
	p := new(func())
	*p = f
	if c.extra == nil {
		c.extra = map[*func()]struct{}{}
	}
	c.extra[p] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.extra[p]; !ok {
			return false
		}
		delete(c.extra, p)
		return true
	}
}

func (c *callContext) stopSlot() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slot == nil {
		return false
	}
	c.slot = nil
	return true
}

var _ context.Context = (*callContext)(nil)
