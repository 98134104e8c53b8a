package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gust "github.com/gustfaas/gust"
)

// fakeModule stands in for a driver's module: a unit test must make starts
// fail, block and count on cue, which real wazero cannot. The lead's
// integration tests run real wazero through the pool.
type fakeModule struct {
	t     *testing.T
	delay time.Duration // how long Invoke takes

	started atomic.Int64 // NewInstance calls that succeeded
	closedN atomic.Int64 // instances closed
	live    atomic.Int64 // started and not closed
	making  atomic.Int64 // NewInstance calls in progress
	// provisioned counts NewInstance calls whose ctx is marked
	// gust.WithProvisioned.
	provisioned atomic.Int64
	closed      atomic.Bool

	mu        sync.Mutex
	failNext  int           // NewInstance calls still to fail
	panicNext int           // NewInstance calls still to panic
	gate      chan struct{} // if set, NewInstance waits for it to close
	entered   chan struct{} // if set, NewInstance signals it started waiting
	// closeGate, if set, makes Close of an instance wait for it to close.
	closeGate chan struct{}
	all       []*fakeInstance
}

func newFakeModule(t *testing.T) *fakeModule { return &fakeModule{t: t} }

func (m *fakeModule) Shape() string { return "fake" }

func (m *fakeModule) NewInstance(ctx context.Context) (gust.Instance, error) {
	if m.closed.Load() {
		m.t.Error("NewInstance on a closed module")
	}
	m.making.Add(1)
	defer m.making.Add(-1)
	if gust.Provisioned(ctx) {
		m.provisioned.Add(1)
	}
	m.mu.Lock()
	gate, entered := m.gate, m.entered
	fail := m.failNext > 0
	if fail {
		m.failNext--
	}
	panics := m.panicNext > 0
	if panics {
		m.panicNext--
	}
	m.mu.Unlock()
	if panics {
		panic("fake driver bug")
	}
	if gate != nil {
		if entered != nil {
			entered <- struct{}{}
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail {
		return nil, gust.Errorf(gust.EFUNCTION, "init trapped")
	}
	m.mu.Lock()
	in := &fakeInstance{m: m, id: len(m.all)}
	m.all = append(m.all, in)
	m.mu.Unlock()
	m.started.Add(1)
	m.live.Add(1)
	return in, nil
}

func (m *fakeModule) Close(ctx context.Context) error {
	if n := m.live.Load(); n != 0 {
		m.t.Errorf("module closed with %d live instances", n)
	}
	if n := m.making.Load(); n != 0 {
		m.t.Errorf("module closed while %d instances were starting", n)
	}
	if m.closed.Swap(true) {
		m.t.Error("module closed twice")
	}
	return nil
}

func (m *fakeModule) instance(i int) *fakeInstance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.all[i]
}

type fakeInstance struct {
	m      *fakeModule
	id     int
	inUse  atomic.Int32
	calls  atomic.Int64
	closed atomic.Bool
}

func (in *fakeInstance) Invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	if !in.inUse.CompareAndSwap(0, 1) {
		in.m.t.Errorf("instance %d entered by two calls at once", in.id)
		return nil, gust.Errorf(gust.EFUNCTION, "concurrent call")
	}
	defer in.inUse.Store(0)
	if in.closed.Load() {
		return nil, gust.Errorf(gust.EFUNCTION, "instance %d is closed", in.id)
	}
	in.calls.Add(1)
	if in.m.delay > 0 {
		time.Sleep(in.m.delay)
	}
	return &gust.Response{Status: 200}, nil
}

func (in *fakeInstance) Close(ctx context.Context) error {
	in.m.mu.Lock()
	gate := in.m.closeGate
	in.m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if in.closed.Swap(true) {
		in.m.t.Errorf("instance %d closed twice", in.id)
		return nil
	}
	in.m.closedN.Add(1)
	in.m.live.Add(-1)
	return nil
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// waitFor polls cond for up to 5 seconds; it fails the test if cond never
// holds. It bounds waits on other goroutines, never measures them.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func invoke(t *testing.T, l *Lease) error {
	t.Helper()
	_, err := l.Instance().Invoke(context.Background(), &gust.Request{Method: "GET", Path: "/"})
	return err
}
