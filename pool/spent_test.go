package pool

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	gust "github.com/gustfaas/gust"
)

// spentModule's instances answer their first call and are spent after it
// (as a reactor closed by its deadline just as the call returned).
type spentModule struct{ *fakeModule }

func (m spentModule) NewInstance(ctx context.Context) (gust.Instance, error) {
	in, err := m.fakeModule.NewInstance(ctx)
	if err != nil {
		return nil, err
	}
	return &spentInstance{fakeInstance: in.(*fakeInstance)}, nil
}

type spentInstance struct {
	*fakeInstance
	spent atomic.Bool
}

func (in *spentInstance) Invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	defer in.spent.Store(true)
	return in.fakeInstance.Invoke(ctx, req)
}

func (in *spentInstance) Usable() bool { return !in.spent.Load() }

// An instance that answered well but reports itself unusable is
// discarded, not handed to the next caller.
func TestSpentInstanceIsDiscarded(t *testing.T) {
	m := newFakeModule(t)
	p := New(spentModule{m}, Config{Function: "fn", Version: 1, Interval: -1, MaxConcurrency: 1, QueueTimeout: time.Minute,
		Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
	})
	for i := range 3 {
		l, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if err := invoke(t, l); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		l.Release(nil)
	}
	if got := m.started.Load(); got != 3 {
		t.Errorf("instances started = %d, want 3 (each spent after its call)", got)
	}
	if got := m.closedN.Load(); got != 3 {
		t.Errorf("instances closed = %d, want 3", got)
	}
}
