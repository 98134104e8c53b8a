package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	gust "github.com/gustfaas/gust"
)

// Config is how a pool runs one function version. New fills zero fields as
// documented on each; ConfigFor builds one from a version.
type Config struct {
	Function string
	Version  int
	// MemoryMB is reserved from Budget for every instance. 0 reserves
	// nothing.
	MemoryMB int
	// MaxConcurrency bounds the leases in flight, those cold-starting
	// included. Below 1: gust.DefaultMaxConcurrency.
	MaxConcurrency int
	// MinInstances are kept warm: never reaped, started by Prewarm and
	// restored by the background loop.
	MinInstances int
	// IdleTimeout is how long an idle instance lives. 0 or less:
	// gust.DefaultIdleTimeout.
	IdleTimeout time.Duration
	// QueueTimeout is how long a call waits for capacity before
	// ETHROTTLED. 0 or less: no waiting, throttle at once.
	QueueTimeout time.Duration
	// StartTimeout bounds a start (NewInstance): an instance that has not
	// finished starting by then is abandoned and its call gets ETIMEOUT.
	// 0 or less: DefaultStartTimeout. ConfigFor gives the function's
	// timeout if that is longer.
	StartTimeout time.Duration
	// PerInstanceConcurrency is how many leases one instance carries at
	// once (1 for wasm). Below 1: 1.
	PerInstanceConcurrency int
	// Budget is the node memory budget shared by all pools; nil: no limit.
	Budget *Budget
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Clock tells the time for idle reaping and queue waits; nil:
	// time.Now. Tests pass a fake clock and call Reconcile.
	Clock func() time.Time
	// Interval is how often the background loop started by New applies
	// the scaling decisions. 0: min(1s, IdleTimeout/4), at least 10ms.
	// Negative: no loop; the owner calls Reconcile.
	Interval time.Duration
}

// DefaultStartTimeout is Lambda's limit on a function's initialization:
// without a bound, a guest whose initialization never returns would hold
// its caller, a concurrency slot and its memory for good, and a Prewarm
// (and so a Drain waiting for it) would never end.
const DefaultStartTimeout = 10 * time.Second

// ConfigFor returns the pool config of version v (its spec with defaults
// applied), sharing budget and logging to logger.
func ConfigFor(v *gust.Version, budget *Budget, logger *slog.Logger) Config {
	s := v.Spec.WithDefaults()
	return Config{
		Function:               v.Function,
		Version:                v.Number,
		MemoryMB:               s.MemoryMB,
		MaxConcurrency:         s.MaxConcurrency,
		MinInstances:           s.MinInstances,
		IdleTimeout:            s.IdleTimeout.D(),
		QueueTimeout:           s.QueueTimeout.D(),
		PerInstanceConcurrency: s.PerInstanceConcurrency,
		StartTimeout:           max(DefaultStartTimeout, s.Timeout.D()),
		Budget:                 budget,
		Logger:                 logger,
	}
}

// Stats is a snapshot of a pool. Instances is Idle + Busy.
type Stats struct {
	gust.PoolStats
	Instances int `json:"instances"`
}

// Pool keeps the instances of one function version. Its methods are safe
// for concurrent use. See the package doc for the life of an instance.
type Pool struct {
	m      gust.Module
	cfg    Config
	spec   Spec
	log    *slog.Logger
	now    func() time.Time
	budget *Budget

	mu       sync.Mutex
	all      []*instance // live instances, in no order
	avail    []*instance // live instances with a free slot; the top is the most recently used
	waiters  waitQueue
	inflight int // leases in flight, cold-starting ones included
	starting int // instances being started, for leases or to reach MinInstances
	closing  int // instances claimed for closing whose Close has not returned
	closed   bool
	forced   bool
	finished bool
	cold     int64
	stateBuf []InstanceState

	// thrott counts the callers of Acquire refused ETHROTTLED or
	// ECAPACITY (see Acquire and AcquireQueued).
	thrott atomic.Int64
	// tooBig is set when an instance needs more memory than the whole
	// Budget: every start would fail, so every call is refused with it.
	tooBig error

	reservedMB atomic.Int64

	drained chan struct{} // closed once the module is closed
	// abort is cancelled by a forced Close: starts still running give up,
	// so Close can wait for them before it closes the module.
	abort       context.Context
	abortStarts context.CancelFunc
	closeErr    error // of Module.Close; read after drained
	loopCancel  context.CancelFunc
	loopDone    chan struct{}
}

// instance is one live gust.Instance and its bookkeeping, guarded by the
// pool's mutex.
type instance struct {
	inst     gust.Instance
	lastUsed time.Time
	leases   int
	allIdx   int  // index in Pool.all while live
	inAvail  bool // on Pool.avail
	dead     bool // removed from the pool: never leased again
	// usable is inst if its driver can tell that a call that succeeded
	// left it spent (see release); asserted once, not per call.
	usable  interface{ Usable() bool }
	claimed bool // someone has taken the job of closing it
}

// New returns a pool of instances of m. Unless cfg.Interval is negative it
// starts a background loop that reaps idle instances and keeps
// MinInstances; Drain or Close stops it. New starts no instance: call
// Prewarm for MinInstances now.
func New(m gust.Module, cfg Config) *Pool {
	if cfg.MaxConcurrency < 1 {
		cfg.MaxConcurrency = gust.DefaultMaxConcurrency
	}
	if cfg.PerInstanceConcurrency < 1 {
		cfg.PerInstanceConcurrency = 1
	}
	if cfg.MinInstances < 0 {
		cfg.MinInstances = 0
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = gust.DefaultIdleTimeout
	}
	if cfg.QueueTimeout < 0 {
		cfg.QueueTimeout = 0
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.MemoryMB < 0 {
		cfg.MemoryMB = 0
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	p := &Pool{
		m:       m,
		cfg:     cfg,
		spec:    Spec{MinInstances: cfg.MinInstances, IdleTimeout: cfg.IdleTimeout},
		log:     log.With("function", cfg.Function, "version", cfg.Version),
		now:     now,
		budget:  cfg.Budget,
		drained: make(chan struct{}),
	}
	p.abort, p.abortStarts = context.WithCancel(context.Background())
	if p.tooBig = p.budget.tooSmall(cfg); p.tooBig != nil {
		p.log.Warn("instances of this version cannot start on this node; every call is refused", "error", p.tooBig)
	}
	p.budget.register(p)
	if cfg.Interval >= 0 {
		interval := cfg.Interval
		if interval == 0 {
			interval = tickInterval(cfg.IdleTimeout)
		}
		ctx, cancel := context.WithCancel(context.Background())
		p.loopCancel = cancel
		p.loopDone = make(chan struct{})
		go p.loop(ctx, interval)
	}
	return p
}

// Function is the name of the function the pool runs.
func (p *Pool) Function() string { return p.cfg.Function }

// Version is the number of the version the pool runs.
func (p *Pool) Version() int { return p.cfg.Version }

// Config returns the pool's config with New's defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Lease is one call's hold on an instance, from Acquire to Release.
type Lease struct {
	p    *Pool
	in   *instance
	cold bool
	wait time.Duration
}

// leases recycles Lease values so the warm path does not allocate; a Lease
// must not be used after Release.
var leases = sync.Pool{New: func() any { return new(Lease) }}

// Instance is the leased instance. Call Invoke on it at most once at a time
// per lease.
func (l *Lease) Instance() gust.Instance { return l.in.inst }

// Cold reports whether this call had to start its instance.
func (l *Lease) Cold() bool { return l.cold }

// QueueWait is how long the call waited in the queue for capacity.
func (l *Lease) QueueWait() time.Duration { return l.wait }

// Release ends the lease. With err == nil, or an err that wraps
// gust.ErrInstanceHealthy (the call failed, the instance did not), the
// instance becomes available again, first to the oldest waiter; with any
// other err the instance is closed and never reused (a call that timed
// out, ran out of memory or trapped leaves it unusable). Call it exactly
// once; the Lease is recycled.
func (l *Lease) Release(err error) {
	p, in := l.p, l.in
	if p == nil {
		return // released twice before being recycled
	}
	*l = Lease{}
	leases.Put(l)
	p.release(in, err)
}

func (p *Pool) newLease(in *instance, cold bool, wait time.Duration) *Lease {
	l := leases.Get().(*Lease)
	*l = Lease{p: p, in: in, cold: cold, wait: wait}
	return l
}

// Acquire leases an instance, below MaxConcurrency leases in flight: a
// warm available one (most recently used first), else a newly started one
// (a cold start, budget permitting); else it waits in a FIFO queue up to
// QueueTimeout or until ctx is done. A cold start is not cut short by
// ctx: if the caller leaves, the instance joins the pool warm and Acquire
// returns EUNAVAILABLE. Errors: ETHROTTLED when no capacity came in time,
// ECAPACITY when the node memory budget refuses a start, EINVALID when an
// instance needs more than the whole budget (no start can ever succeed),
// ETIMEOUT when a start passes StartTimeout, EUNAVAILABLE once the pool
// is draining or when ctx ended during a cold start, and the driver's
// error when a cold start fails. ColdStart tells whether an error ended a
// call that cold-started an instance.
//
// A refusal with ETHROTTLED or ECAPACITY counts in Stats().Throttled: the
// caller answers it as a throttle (429).
func (p *Pool) Acquire(ctx context.Context) (*Lease, error) {
	l, err := p.acquire(ctx)
	if err != nil {
		if code := gust.ErrorCode(err); code == gust.ETHROTTLED || code == gust.ECAPACITY {
			p.thrott.Add(1)
		}
	}
	return l, err
}

// AcquireQueued is Acquire for a caller that keeps its own queue and asks
// again when refused (an async event waiting for an instance): its
// ETHROTTLED and ECAPACITY answers are waits, not throttles, and are not
// counted in Stats().Throttled.
func (p *Pool) AcquireQueued(ctx context.Context) (*Lease, error) {
	return p.acquire(ctx)
}

func (p *Pool) acquire(ctx context.Context) (*Lease, error) {
	if p.tooBig != nil {
		return nil, p.tooBig
	}
	p.mu.Lock()
	switch admit(p.loadLocked(p.waiters.n)) {
	case admitIdle:
		in := p.takeLocked()
		p.mu.Unlock()
		return p.newLease(in, false, 0), nil
	case admitStart:
		p.inflight++
		p.starting++
		p.mu.Unlock()
		return p.coldStart(ctx, 0)
	case admitQueue:
		w := &waiter{ch: make(chan grant, 1)}
		p.waiters.push(w)
		p.mu.Unlock()
		return p.wait(ctx, w)
	case admitThrottle:
		p.mu.Unlock()
		return nil, p.errThrottled(nil)
	default:
		p.mu.Unlock()
		return nil, p.errUnavailable()
	}
}

func (p *Pool) loadLocked(waiting int) load {
	return load{
		Closed:         p.closed,
		Available:      len(p.avail),
		InFlight:       p.inflight,
		Waiting:        waiting,
		MaxConcurrency: p.cfg.MaxConcurrency,
		CanWait:        p.cfg.QueueTimeout > 0,
	}
}

// takeLocked leases the most recently used available instance.
func (p *Pool) takeLocked() *instance {
	in := p.avail[len(p.avail)-1]
	in.leases++
	p.inflight++
	if in.leases >= p.cfg.PerInstanceConcurrency {
		p.avail[len(p.avail)-1] = nil
		p.avail = p.avail[:len(p.avail)-1]
		in.inAvail = false
	}
	return in
}

// dispatchLocked hands freed capacity to waiters, oldest first, deciding
// for the head waiter as admit would for a call with nobody ahead of it.
func (p *Pool) dispatchLocked() {
	for p.waiters.n > 0 {
		var g grant
		switch admit(p.loadLocked(0)) {
		case admitIdle:
			g.in = p.takeLocked()
		case admitStart:
			p.inflight++
			p.starting++
			g.start = true
		default:
			return
		}
		w := p.waiters.popFront()
		w.granted = true
		w.ch <- g
	}
}

// grant is what a waiter is handed: an instance, leave to start one, or
// an error.
type grant struct {
	in    *instance
	start bool
	err   error
}

func (p *Pool) wait(ctx context.Context, w *waiter) (*Lease, error) {
	start := p.now()
	timer := time.NewTimer(p.cfg.QueueTimeout)
	defer timer.Stop()
	var cause error
	select {
	case g := <-w.ch:
		return p.granted(ctx, g, p.now().Sub(start))
	case <-timer.C:
	case <-ctx.Done():
		cause = ctx.Err()
	}
	p.mu.Lock()
	if w.granted {
		// Capacity arrived as the wait ended. Take it if only the queue
		// timeout passed; hand it on if the caller is gone.
		p.mu.Unlock()
		g := <-w.ch
		if cause == nil {
			return p.granted(ctx, g, p.now().Sub(start))
		}
		p.giveBack(g)
		return nil, p.errThrottled(cause)
	}
	p.waiters.remove(w)
	p.mu.Unlock()
	return nil, p.errThrottled(cause)
}

func (p *Pool) granted(ctx context.Context, g grant, wait time.Duration) (*Lease, error) {
	switch {
	case g.err != nil:
		return nil, g.err
	case g.start:
		return p.coldStart(ctx, wait)
	default:
		return p.newLease(g.in, false, wait), nil
	}
}

// giveBack returns a grant its waiter will not use.
func (p *Pool) giveBack(g grant) {
	switch {
	case g.err != nil:
	case g.start:
		p.startFailed(true)
	default:
		p.release(g.in, nil)
	}
}

// coldStart starts an instance for a lease already counted in flight and
// starting. The start outlives a caller who leaves: the instance is
// released into the pool, warm for the next call (or the oldest waiter).
func (p *Pool) coldStart(ctx context.Context, wait time.Duration) (*Lease, error) {
	in, err := p.start(ctx, true)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		p.release(in, nil)
		return nil, &coldErr{gust.WrapError(gust.EUNAVAILABLE, err, "request ended while an instance of function %s version %d was starting", p.cfg.Function, p.cfg.Version)}
	}
	return p.newLease(in, true, wait), nil
}

// coldErr marks the error of a call that cold-started an instance and got
// no lease: the start failed or timed out, or it finished after the caller
// had left. See ColdStart.
type coldErr struct{ err error }

func (e *coldErr) Error() string { return e.err.Error() }
func (e *coldErr) Unwrap() error { return e.err }

// ColdStart reports whether err, from Acquire, ended a call that started
// an instance for itself (the start failed, passed StartTimeout, or ended
// after the caller left): the call was a cold start though it got no
// lease, and is recorded as one. A refusal before any start (throttled,
// no memory, draining) is not.
func ColdStart(err error) bool {
	var c *coldErr
	return errors.As(err, &c)
}

// start reserves memory and starts an instance, outside the pool lock; the
// caller has counted it in p.starting (and, for a lease, in p.inflight).
// For a lease the instance comes back leased once; otherwise it is made
// available.
//
// A start is bounded by StartTimeout and cancelled by a forced Close. A
// start for a lease is detached from its caller's cancellation: a client
// that hangs up must not waste a start the pool can keep warm. A start to
// reach MinInstances keeps ctx's, which is the background loop's (Drain
// stops it: nobody will use the instance). Such a start is marked
// provisioned (gust.WithProvisioned), as Lambda's provisioned concurrency.
func (p *Pool) start(ctx context.Context, forLease bool) (*instance, error) {
	if forLease {
		ctx = context.WithoutCancel(ctx)
	} else {
		ctx = gust.WithProvisioned(ctx)
	}
	sctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	stop := context.AfterFunc(p.abort, cancel)
	defer stop()
	mb := p.cfg.MemoryMB
	if err := p.budget.reserve(sctx, p, mb); err != nil {
		p.startFailed(forLease)
		return nil, err
	}
	p.reservedMB.Add(int64(mb))
	gi, err := p.newInstance(sctx)
	if err != nil {
		timedOut := errors.Is(sctx.Err(), context.DeadlineExceeded)
		p.freeMemory()
		aborted := p.abort.Err() != nil
		p.startFailed(forLease)
		if aborted {
			return nil, p.errUnavailable()
		}
		p.log.Warn("instance failed to start", "error", err)
		if timedOut {
			err = gust.WrapError(gust.ETIMEOUT, err, "function %s version %d: the instance did not finish starting within %s", p.cfg.Function, p.cfg.Version, p.cfg.StartTimeout)
		} else {
			err = fmt.Errorf("start an instance of %s version %d: %w", p.cfg.Function, p.cfg.Version, err)
		}
		if forLease {
			err = &coldErr{err}
		}
		return nil, err
	}
	in := &instance{inst: gi, lastUsed: p.now()}
	in.usable, _ = gi.(interface{ Usable() bool })
	p.mu.Lock()
	p.starting--
	if p.forced || (p.closed && !forLease) {
		// A forced Close ran while this start did (it left the module open
		// for it), or a Prewarm outlived a Drain: nobody will lease it.
		if forLease {
			p.inflight--
		}
		in.dead = true
		p.takeForCloseLocked(in)
		p.mu.Unlock()
		p.closeInstance(in)
		return nil, p.errUnavailable()
	}
	in.allIdx = len(p.all)
	p.all = append(p.all, in)
	if forLease {
		in.leases = 1
		p.cold++
	}
	if !p.closed && in.leases < p.cfg.PerInstanceConcurrency {
		p.avail = append(p.avail, in)
		in.inAvail = true
		p.dispatchLocked()
	}
	p.mu.Unlock()
	return in, nil
}

// newInstance is Module.NewInstance with a driver's panic turned into an
// error: unrecovered, it would unwind past the start's bookkeeping (the
// HTTP server recovers a handler's panic and carries on), leaving the
// reserved memory and the call's concurrency slot taken for good.
func (p *Pool) newInstance(ctx context.Context) (_ gust.Instance, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("starting an instance panicked", "panic", r, "stack", string(debug.Stack()))
			err = gust.Errorf(gust.EINTERNAL, "starting an instance of %s version %d failed: its driver panicked (a bug in gust; the server log has the details)", p.cfg.Function, p.cfg.Version)
		}
	}()
	return p.m.NewInstance(ctx)
}

// startFailed undoes the counting of a start that did not happen.
func (p *Pool) startFailed(forLease bool) {
	p.mu.Lock()
	p.starting--
	if forLease {
		p.inflight--
	}
	p.dispatchLocked()
	fin := p.finishLocked()
	p.mu.Unlock()
	if fin {
		p.finish()
	}
}

// errInstanceSpent marks, for release, an instance that answered but can
// serve no further call.
var errInstanceSpent = errors.New("instance can serve no further call")

func (p *Pool) release(in *instance, err error) {
	// A call can succeed and still leave its instance spent (a reactor
	// whose deadline closed it as the call returned): discard it rather
	// than hand the next caller an instance that can only fail.
	if err == nil {
		if in.usable != nil && !in.usable.Usable() {
			err = errInstanceSpent
		}
	}
	now := p.now()
	p.mu.Lock()
	in.leases--
	p.inflight--
	switch {
	case p.closed || in.dead || (err != nil && !errors.Is(err, gust.ErrInstanceHealthy)):
		p.killLocked(in)
	default:
		in.lastUsed = now
		if !in.inAvail {
			p.avail = append(p.avail, in)
			in.inAvail = true
		}
	}
	mustClose := p.claimLocked(in)
	p.dispatchLocked()
	fin := p.finishLocked()
	p.mu.Unlock()
	if mustClose {
		p.closeInstance(in)
	}
	if fin {
		p.finish()
	}
}

// killLocked removes in from the pool so it is never leased again.
func (p *Pool) killLocked(in *instance) {
	if in.dead {
		return
	}
	in.dead = true
	last := len(p.all) - 1
	p.all[in.allIdx] = p.all[last]
	p.all[in.allIdx].allIdx = in.allIdx
	p.all[last] = nil
	p.all = p.all[:last]
	if in.inAvail {
		for i, a := range p.avail {
			if a == in {
				copy(p.avail[i:], p.avail[i+1:])
				p.avail[len(p.avail)-1] = nil
				p.avail = p.avail[:len(p.avail)-1]
				break
			}
		}
		in.inAvail = false
	}
}

// claimLocked reports whether the caller must close the dead instance in:
// the first to see it dead with no lease left.
func (p *Pool) claimLocked(in *instance) bool {
	if !in.dead || in.claimed || in.leases > 0 {
		return false
	}
	p.takeForCloseLocked(in)
	return true
}

// takeForCloseLocked claims the dead instance in for closing and returns
// its memory to the budget now, before its Close runs: Close can take a
// while (a process being killed), and a caller handed the place it freed
// (the oldest waiter, served before the lock is released) must not be
// refused ECAPACITY for memory already on its way back.
func (p *Pool) takeForCloseLocked(in *instance) {
	in.claimed = true
	p.closing++
	p.freeMemory()
}

// closeInstance closes an instance claimed by takeForCloseLocked.
func (p *Pool) closeInstance(in *instance) {
	if err := in.inst.Close(context.Background()); err != nil {
		p.log.Warn("closing an instance failed", "error", err)
	}
	p.mu.Lock()
	p.closing--
	fin := p.finishLocked()
	p.mu.Unlock()
	if fin {
		p.finish()
	}
}

// freeMemory returns one instance's memory; it takes no lock, so it may
// be called with the pool's held.
func (p *Pool) freeMemory() {
	p.reservedMB.Add(-int64(p.cfg.MemoryMB))
	p.budget.release(p.cfg.MemoryMB)
}

// finishLocked reports whether the caller must finish the pool: it is
// draining and nothing is in flight, starting or closing any more (or a
// forced Close gave up waiting for leases).
func (p *Pool) finishLocked() bool {
	if !p.closed || p.finished || p.closing > 0 || p.starting > 0 {
		// Even a forced Close waits for starts: NewInstance uses the
		// module, which must not be closed under it.
		return false
	}
	if !p.forced && p.inflight > 0 {
		return false
	}
	p.finished = true
	return true
}

func (p *Pool) finish() {
	p.abortStarts()
	if err := p.m.Close(context.Background()); err != nil {
		p.closeErr = fmt.Errorf("close module of %s version %d: %w", p.cfg.Function, p.cfg.Version, err)
	}
	p.budget.unregister(p)
	p.log.Debug("pool drained")
	close(p.drained)
}

// Prewarm starts instances until MinInstances are live or starting, each
// bounded by StartTimeout. It is called after a deploy and at server
// start; the background loop also restores MinInstances. It returns the
// first start error.
func (p *Pool) Prewarm(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return p.errUnavailable()
	}
	if p.tooBig != nil {
		p.mu.Unlock()
		return p.tooBig
	}
	n := p.cfg.MinInstances - len(p.all) - p.starting
	if n <= 0 {
		p.mu.Unlock()
		return nil
	}
	p.starting += n
	p.mu.Unlock()
	return p.startIdle(ctx, n)
}

// startIdle starts n available instances one after another; the caller
// counted them in p.starting.
func (p *Pool) startIdle(ctx context.Context, n int) error {
	for i := 0; i < n; i++ {
		if _, err := p.start(ctx, false); err != nil {
			if rest := n - i - 1; rest > 0 {
				p.mu.Lock()
				p.starting -= rest
				p.dispatchLocked()
				fin := p.finishLocked()
				p.mu.Unlock()
				if fin {
					p.finish()
				}
			}
			return err
		}
	}
	return nil
}

// Reconcile applies one scaling decision now: it reaps idle instances past
// IdleTimeout (keeping MinInstances) and starts instances up to
// MinInstances. The background loop calls it; with Config.Interval < 0 the
// owner does. It returns the first start error. A pool whose instances
// need more than the whole Budget starts none (New logged why once).
func (p *Pool) Reconcile(ctx context.Context) error {
	now := p.now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	s := State{Instances: p.stateBuf[:0], Starting: p.starting}
	for _, in := range p.all {
		s.Instances = append(s.Instances, InstanceState{LastUsed: in.lastUsed, Busy: in.leases > 0})
	}
	p.stateBuf = s.Instances
	plan := Decide(now, s, p.spec)
	var reap []*instance
	if len(plan.Reap) > 0 {
		reap = make([]*instance, 0, len(plan.Reap))
		for _, i := range plan.Reap {
			reap = append(reap, p.all[i])
		}
		for _, in := range reap {
			p.killLocked(in)
			p.claimLocked(in)
		}
	}
	if p.tooBig != nil {
		plan.Start = 0
	}
	p.starting += plan.Start
	p.mu.Unlock()
	for _, in := range reap {
		p.closeInstance(in)
	}
	if len(reap) > 0 {
		p.log.Debug("reaped idle instances", "count", len(reap))
	}
	if plan.Start > 0 {
		return p.startIdle(ctx, plan.Start)
	}
	return nil
}

func (p *Pool) loop(ctx context.Context, interval time.Duration) {
	defer close(p.loopDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.Reconcile(ctx); err != nil && ctx.Err() == nil {
			if gust.ErrorCode(err) == gust.ECAPACITY {
				p.log.Debug("cannot keep min instances warm", "error", err)
			} else {
				p.log.Warn("cannot keep min instances warm", "error", err)
			}
		}
	}
}

// Drain stops the pool from accepting calls (Acquire returns EUNAVAILABLE,
// and so do calls still queued), closes idle instances at once and the
// others as their leases end, and then closes the module; calls in flight
// finish on this version. It returns when the module is closed, or with
// ctx's error when ctx ends first (the drain then goes on by itself as
// leases are released). It is safe to call more than once.
func (p *Pool) Drain(ctx context.Context) error {
	var idle []*instance
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.loopCancel != nil {
			p.loopCancel()
		}
		unavailable := p.errUnavailable()
		for w := p.waiters.popFront(); w != nil; w = p.waiters.popFront() {
			w.granted = true
			w.ch <- grant{err: unavailable}
		}
		for _, in := range p.avail {
			in.inAvail = false
			if in.leases == 0 {
				idle = append(idle, in)
			}
		}
		clear(p.avail)
		p.avail = p.avail[:0]
		for _, in := range idle {
			p.killLocked(in)
			p.claimLocked(in)
		}
	}
	fin := p.finishLocked()
	p.mu.Unlock()
	for _, in := range idle {
		p.closeInstance(in)
	}
	if fin {
		p.finish()
	}
	if p.loopDone != nil {
		select {
		case <-p.loopDone:
		case <-ctx.Done():
			return fmt.Errorf("drain %s version %d: %w", p.cfg.Function, p.cfg.Version, ctx.Err())
		}
	}
	select {
	case <-p.drained:
		return p.closeErr
	case <-ctx.Done():
		return fmt.Errorf("drain %s version %d: %w", p.cfg.Function, p.cfg.Version, ctx.Err())
	}
}

// Close drains the pool like Drain; if ctx ends before the leases in
// flight do, it closes their instances under them (their calls fail),
// cancels the starts still running, and closes the module once they have
// returned, without waiting for the leases. For server shutdown.
func (p *Pool) Close(ctx context.Context) error {
	err := p.Drain(ctx)
	if err == nil || !errors.Is(err, ctx.Err()) {
		return err
	}
	var busy []*instance
	p.abortStarts()
	p.mu.Lock()
	p.forced = true
	for len(p.all) > 0 {
		in := p.all[len(p.all)-1]
		p.killLocked(in)
		if !in.claimed {
			p.takeForCloseLocked(in)
			busy = append(busy, in)
		}
	}
	fin := p.finishLocked()
	p.mu.Unlock()
	p.log.Warn("closing instances with calls in flight", "count", len(busy))
	for _, in := range busy {
		p.closeInstance(in)
	}
	if fin {
		p.finish()
	}
	if p.loopDone != nil {
		<-p.loopDone
	}
	<-p.drained
	return p.closeErr
}

// Stats returns a snapshot of the pool.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{
		PoolStats: gust.PoolStats{
			Function:   p.cfg.Function,
			Version:    p.cfg.Version,
			Starting:   p.starting,
			Waiting:    p.waiters.n,
			InFlight:   p.inflight,
			MemoryMB:   int(p.reservedMB.Load()),
			ColdStarts: p.cold,
			Throttled:  p.thrott.Load(),
		},
		Instances: len(p.all),
	}
	for _, in := range p.all {
		if in.leases > 0 {
			s.Busy++
		} else {
			s.Idle++
		}
	}
	return s
}

func (p *Pool) errThrottled(cause error) error {
	if cause != nil {
		return gust.WrapError(gust.ETHROTTLED, cause, "function %s is at its max concurrency of %d; retry later", p.cfg.Function, p.cfg.MaxConcurrency)
	}
	return gust.Errorf(gust.ETHROTTLED, "function %s is at its max concurrency of %d; retry later", p.cfg.Function, p.cfg.MaxConcurrency)
}

func (p *Pool) errUnavailable() error {
	return gust.Errorf(gust.EUNAVAILABLE, "function %s version %d is shutting down; retry", p.cfg.Function, p.cfg.Version)
}

// lruIdle returns the pool's least recently used idle instance that a
// Budget may reclaim without going below MinInstances.
func (p *Pool) lruIdle() (*instance, time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.all) <= p.cfg.MinInstances {
		return nil, time.Time{}, false
	}
	var lru *instance
	for _, in := range p.avail {
		if in.leases == 0 && (lru == nil || in.lastUsed.Before(lru.lastUsed)) {
			lru = in
		}
	}
	if lru == nil {
		return nil, time.Time{}, false
	}
	return lru, lru.lastUsed, true
}

// reclaim closes in for the Budget if it is still idle and reclaimable,
// and reports whether it did.
func (p *Pool) reclaim(in *instance) bool {
	p.mu.Lock()
	if p.closed || in.dead || in.leases > 0 || len(p.all) <= p.cfg.MinInstances {
		p.mu.Unlock()
		return false
	}
	p.killLocked(in)
	p.claimLocked(in)
	p.mu.Unlock()
	p.log.Debug("reclaimed an idle instance for the node memory budget")
	p.closeInstance(in)
	return true
}

// waiter is one queued Acquire.
type waiter struct {
	next, prev *waiter
	ch         chan grant // buffered: the granter never blocks
	granted    bool       // taken off the queue and sent a grant
}

// waitQueue is a FIFO of waiters that can drop one from the middle when
// its wait ends.
type waitQueue struct {
	head, tail *waiter
	n          int
}

func (q *waitQueue) push(w *waiter) {
	w.prev = q.tail
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
}

func (q *waitQueue) popFront() *waiter {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}

func (q *waitQueue) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.next, w.prev = nil, nil
	q.n--
}
