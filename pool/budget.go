package pool

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gust "github.com/gustfaas/gust"
)

// maxReclaims bounds the reclaim attempts of one reservation; each attempt
// closes an instance or finds that a racing call changed the state.
const maxReclaims = 1000

// Budget is the node's memory budget, shared by all pools. Every instance
// reserves its pool's MemoryMB before it starts and frees it when closed.
// When a start would exceed the budget, the budget reclaims idle instances
// of other pools, least recently used first across the node, never a busy
// one and never below a pool's MinInstances; only when nothing is
// reclaimable is the start refused with ECAPACITY. An instance larger than
// the whole budget is refused with EINVALID instead (see tooSmall). A nil
// *Budget is no limit.
//
// Its mutex is never held while a pool's is (see the package doc).
// Returning memory takes no lock, so a pool returns an instance's memory
// under its own lock the moment it takes the instance out of service.
type Budget struct {
	total int
	// used only grows under mu (reserve checks and adds as one step) and
	// shrinks without it: a release racing a reserve only makes the check
	// stricter than it needed to be, never lets it pass the total.
	used atomic.Int64

	mu    sync.Mutex
	pools []*Pool
}

// BudgetStats is a snapshot of a Budget.
type BudgetStats struct {
	TotalMB int `json:"totalMB"` // 0: no limit
	UsedMB  int `json:"usedMB"`
	Pools   int `json:"pools"`
}

// NewBudget returns a budget of totalMB megabytes; 0 or less is no limit
// (memory is still counted).
func NewBudget(totalMB int) *Budget {
	if totalMB < 0 {
		totalMB = 0
	}
	return &Budget{total: totalMB}
}

// Stats returns the budget's total and used megabytes.
func (b *Budget) Stats() BudgetStats {
	if b == nil {
		return BudgetStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{TotalMB: b.total, UsedMB: int(b.used.Load()), Pools: len(b.pools)}
}

func (b *Budget) register(p *Pool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.pools = append(b.pools, p)
	b.mu.Unlock()
}

func (b *Budget) unregister(p *Pool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	if i := slices.Index(b.pools, p); i >= 0 {
		b.pools = slices.Delete(b.pools, i, i+1)
	}
	b.mu.Unlock()
}

// release returns mb; it takes no lock (see Budget).
func (b *Budget) release(mb int) {
	if b == nil || mb <= 0 {
		return
	}
	b.used.Add(-int64(mb))
}

// reserve takes mb for an instance of requester, reclaiming idle instances
// of other pools if it must. Errors: ECAPACITY, and EINVALID for an
// instance larger than the whole budget.
func (b *Budget) reserve(ctx context.Context, requester *Pool, mb int) error {
	if b == nil || mb <= 0 {
		return nil
	}
	if err := b.tooSmall(requester.cfg); err != nil {
		return err
	}
	used := 0
	for attempt := 0; attempt < maxReclaims; attempt++ {
		b.mu.Lock()
		if cur := int(b.used.Load()); b.total == 0 || cur+mb <= b.total {
			b.used.Add(int64(mb))
			b.mu.Unlock()
			return nil
		}
		used = int(b.used.Load())
		pools := slices.Clone(b.pools)
		b.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return gust.WrapError(gust.ECAPACITY, err, "node memory budget of %d MB exhausted (%d MB in use); gave up reclaiming memory for %s", b.total, used, requester.cfg.Function)
		}
		victim, in := lruIdle(pools, requester)
		if victim == nil {
			break
		}
		victim.reclaim(in)
	}
	return gust.Errorf(gust.ECAPACITY, "node memory budget of %d MB exhausted (%d MB in use); no idle instance can be reclaimed to start %s (%d MB)", b.total, used, requester.cfg.Function, mb)
}

// tooSmall returns the error of a pool whose instances can never start:
// one needs more memory than the whole budget. It is EINVALID, not
// ECAPACITY: no amount of waiting or reclaiming helps (the version was
// deployed before the node restarted with a smaller budget), and a caller
// told 429 and Retry-After would retry for ever. The message names both
// figures and the flag that sets each.
func (b *Budget) tooSmall(cfg Config) error {
	if b == nil || b.total == 0 || cfg.MemoryMB <= b.total {
		return nil
	}
	return gust.Errorf(gust.EINVALID, "function %s version %d cannot run on this node: an instance needs %d MB of memory (--memory), more than the node's whole memory budget of %d MB (gust serve --memory-budget); deploy it again with --memory %d or less, or restart the server with a larger --memory-budget",
		cfg.Function, cfg.Version, cfg.MemoryMB, b.total, b.total)
}

// Admit returns the EINVALID a pool of v would refuse every call with
// (see tooSmall), so that a caller can refuse work for v before storing
// it; nil if v fits this budget.
func (b *Budget) Admit(v *gust.Version) error {
	if b == nil || b.total == 0 {
		return nil // the common case, on every /async accept: no copy of the spec
	}
	mb := v.Spec.MemoryMB
	if mb <= 0 {
		mb = gust.DefaultMemoryMB
	}
	return b.tooSmall(Config{Function: v.Function, Version: v.Number, MemoryMB: mb})
}

// lruIdle picks the least recently used reclaimable idle instance among
// pools other than requester.
func lruIdle(pools []*Pool, requester *Pool) (*Pool, *instance) {
	var (
		best   *Pool
		bestIn *instance
		bestAt time.Time
	)
	for _, p := range pools {
		if p == requester {
			continue
		}
		in, at, ok := p.lruIdle()
		if ok && (bestIn == nil || at.Before(bestAt)) {
			best, bestIn, bestAt = p, in, at
		}
	}
	return best, bestIn
}
