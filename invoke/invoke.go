package invoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/pool"
	"github.com/gustfaas/gust/trace"
)

// Config configures an Invoker.
type Config struct {
	Registry gust.Registry
	Drivers  []gust.Driver
	Budget   *pool.Budget     // node memory budget shared by every pool
	Recorder gust.Recorder    // nil: invocations are not recorded
	Logs     gust.LogSink     // function stdout/stderr
	Events   EventSink        // platform events about invocations; nil: none
	Secrets  SecretSource     // values of the secrets a spec lists; nil: none
	Logger   *slog.Logger     // nil: slog.Default()
	Now      func() time.Time // nil: time.Now
	// Tracer records the queue-wait, cold-start and execution spans and
	// gives the function a traceparent; nil: none.
	Tracer *trace.Tracer
}

type key struct {
	fn  string
	ver int
}

// entry is the pool of one version, created once; ready is closed when the
// module has loaded (or failed to).
type entry struct {
	ready chan struct{}
	// created is the CreatedAt of the version the pool runs: a function
	// removed and deployed again numbers its versions from 1 again, and
	// its version 1 must not be served by the pool of the old one.
	created  time.Time
	pool     *pool.Pool
	module   gust.Module
	err      error
	lastUsed atomic.Int64 // unix nanoseconds of the last call routed here
}

// RetireAfter is how long a version no alias points at keeps its pool
// after its last call: long enough that a client addressing the version
// directly (NAME@3) keeps its warm instances, short enough that a rolled
// back version gives its memory back promptly.
const RetireAfter = 2 * time.Second

// SecretSource opens the secrets a version lists, to put in its
// instances' environment.
type SecretSource interface {
	Values(ctx context.Context, names []string) (map[string]string, error)
}

// EventSink receives the platform's events about an invocation (cold
// start, timeout, out of memory, throttle, failure), shown with the
// function's own log lines.
type EventSink interface {
	Event(function string, version int, invocationID, format string, args ...any)
}

// Invoker runs invocations. It is safe for concurrent use.
type Invoker struct {
	cfg     Config
	log     *slog.Logger
	drivers map[string]gust.Driver

	mu     sync.RWMutex
	pools  map[key]*entry
	closed bool

	// Pools taken out of the map drain in the background; Close waits
	// for them, and forces them once its context ends.
	retiring     sync.WaitGroup
	retireCtx    context.Context
	retireCancel context.CancelFunc
}

// New returns an Invoker.
func New(cfg Config) *Invoker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	iv := &Invoker{cfg: cfg, log: cfg.Logger, drivers: map[string]gust.Driver{}, pools: map[key]*entry{}}
	iv.retireCtx, iv.retireCancel = context.WithCancel(context.Background())
	for _, d := range cfg.Drivers {
		iv.drivers[d.Runtime()] = d
	}
	return iv
}

// NewID returns a new invocation id: 32 hex digits of randomness.
//
// The digits come from ChaCha8 generators (cryptographically strong, as
// crypto/rand's own generator is) seeded from crypto/rand and kept in a
// pool: reading crypto/rand for every request cost about half a
// microsecond of a warm call.
func NewID() string {
	g := idSources.Get().(*mrand.ChaCha8)
	var b [16]byte
	_, _ = g.Read(b[:])
	idSources.Put(g)
	var out [32]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

var idSources = sync.Pool{New: func() any {
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	return mrand.NewChaCha8(seed)
}}

// viewer is a registry that can hand out its cached records without
// copying them (registry.Registry does); Resolve prefers it, since it runs
// on every request.
type viewer interface {
	ViewFunction(ctx context.Context, name string) (*gust.Function, error)
	ViewVersion(ctx context.Context, name string, number int) (*gust.Version, error)
}

// Resolve finds the version that a reference to a function names: ref ""
// means the live alias; a number names a version; anything else names an
// alias, whose weights pick one version. Errors: ENOTFOUND, whose message
// names ref and, for a ref that cannot name anything (0, a leading zero,
// a number past the latest version, not an alias name), says why.
//
// The version returned may be shared with other callers (see viewer): it
// must not be modified.
func (iv *Invoker) Resolve(ctx context.Context, name, ref string) (*gust.Version, error) {
	vw, view := iv.cfg.Registry.(viewer)
	var fn *gust.Function
	var err error
	if view {
		fn, err = vw.ViewFunction(ctx, name)
	} else {
		fn, err = iv.cfg.Registry.Function(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	var number int
	switch {
	case ref == "":
		number = pick(fn, gust.AliasLive)
		if number == 0 {
			return nil, gust.Errorf(gust.ENOTFOUND, "function %q has no live version", name)
		}
	case isDigits(ref):
		if number, err = versionNumber(name, fn.LatestVersion, ref); err != nil {
			return nil, err
		}
	default:
		number = pick(fn, ref)
		if number == 0 {
			if gust.ValidateName(ref) != nil {
				return nil, gust.Errorf(gust.ENOTFOUND, "function %q has no version or alias %q: versions are numbered from 1 (%s@1), and alias names are lowercase letters, digits and '-', starting and ending with a letter or digit", name, ref, name)
			}
			return nil, gust.Errorf(gust.ENOTFOUND, "function %q has no alias %q", name, ref)
		}
	}
	var v *gust.Version
	if view {
		v, err = vw.ViewVersion(ctx, name, number)
	} else {
		v, err = iv.cfg.Registry.Version(ctx, name, number)
	}
	if err != nil {
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			return nil, gust.Errorf(gust.ENOTFOUND, "function %q has no version %d (its latest is version %d)", name, number, fn.LatestVersion)
		}
		return nil, err
	}
	return v, nil
}

// versionNumber reads ref, all digits, as a version number of function
// name, whose latest version is latest. Only the plain decimal form names
// a version, so that one version has one address. Errors: ENOTFOUND
// naming ref and why it names no version.
func versionNumber(name string, latest int, ref string) (int, error) {
	if strings.TrimLeft(ref, "0") == "" {
		return 0, gust.Errorf(gust.ENOTFOUND, "function %q has no version %s: versions are numbered from 1", name, ref)
	}
	if ref[0] == '0' {
		return 0, gust.Errorf(gust.ENOTFOUND, "function %q has no version %q: write a version number without leading zeros, as in %s@%s", name, ref, name, strings.TrimLeft(ref, "0"))
	}
	n, err := strconv.Atoi(ref)
	if err != nil { // past the largest int: no version can have it
		return 0, gust.Errorf(gust.ENOTFOUND, "function %q has no version %s (its latest is version %d)", name, ref, latest)
	}
	return n, nil
}

func pick(fn *gust.Function, alias string) int {
	a, ok := fn.Aliases[alias]
	if !ok {
		if alias == gust.AliasLive {
			return fn.Live
		}
		return 0
	}
	if len(a.Targets) == 1 {
		return a.Targets[0].Version
	}
	return a.Pick(mrand.IntN(100))
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Invoke runs req on an instance of version v and returns what the function
// answered. req.ID, Function and Version are filled in if empty. The
// invocation record is handed to the Recorder whatever the outcome.
//
// The call is detached from ctx's cancellation (a client that hangs up does
// not kill a warm instance mid-call, as on Lambda) but bounded by the
// version's timeout.
func (iv *Invoker) Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error) {
	return iv.run(ctx, v, req, nil)
}

// InvokeStarted is Invoke for a caller that keeps its own queue (async,
// whose events stay "queued" and cancellable until they have an instance):
// started is called once, on the caller's goroutine, when an instance has
// been leased and before the function runs. If started returns an error
// the instance goes back unused, the function does not run, and that error
// is returned. A call that never starts, because no instance was free
// within the queue timeout (ETHROTTLED, ECAPACITY), the version is shutting
// down (EUNAVAILABLE) or started refused it, is not recorded and raises no
// event: it has not run, and its caller will try it again, so it is
// neither an invocation nor a throttle a client saw (nor does the pool
// count it as a throttle in its stats).
func (iv *Invoker) InvokeStarted(ctx context.Context, v *gust.Version, req *gust.Request, started func() error) (*gust.Response, error) {
	return iv.run(ctx, v, req, started)
}

func (iv *Invoker) run(ctx context.Context, v *gust.Version, req *gust.Request, started func() error) (*gust.Response, error) {
	if req.ID == "" {
		req.ID = NewID()
	}
	req.Function, req.Version = v.Function, v.Number
	if req.Trigger == "" {
		req.Trigger = "http"
	}
	start := iv.cfg.Now()
	inv := &gust.Invocation{
		ID: req.ID, Function: v.Function, Version: v.Number, Trigger: req.Trigger,
		Start: start, MemoryMB: v.Spec.MemoryMB,
	}
	resp, unrecorded, err := iv.invoke(ctx, v, req, inv, started)
	if unrecorded {
		return nil, err
	}
	inv.Status = gust.StatusOf(err)
	if err != nil {
		inv.Error = gust.ErrorMessage(err)
	} else {
		inv.HTTPCode = resp.Status
	}
	if iv.cfg.Recorder != nil {
		iv.cfg.Recorder.Record(inv)
	}
	if ev := iv.cfg.Events; ev != nil {
		if inv.Cold {
			ev.Event(v.Function, v.Number, req.ID, "cold start")
		}
		if err != nil {
			ev.Event(v.Function, v.Number, req.ID, "%s: %s", inv.Status, inv.Error)
		}
	}
	return resp, err
}

// invoke runs req; unrecorded reports a call with started that never
// started (see InvokeStarted).
func (iv *Invoker) invoke(ctx context.Context, v *gust.Version, req *gust.Request, inv *gust.Invocation, started func() error) (_ *gust.Response, unrecorded bool, _ error) {
	var lease *pool.Lease
	var err error
	// A pool retired by Reconcile between lookup and Acquire answers
	// EUNAVAILABLE; the next lookup makes a fresh one.
	for attempt := 0; attempt < 3; attempt++ {
		var p *pool.Pool
		p, err = iv.pool(ctx, v, inv.Start)
		if err != nil {
			inv.NotRun = true
			return nil, started != nil && gust.ErrorCode(err) == gust.EUNAVAILABLE, err
		}
		if started != nil {
			// Its refusals are waits in the caller's queue, not
			// throttles: the pool must not count them as such.
			lease, err = p.AcquireQueued(ctx)
		} else {
			lease, err = p.Acquire(ctx)
		}
		// A caller gone (a hang-up during a cold start) is not retried:
		// it would run the function for nobody.
		if gust.ErrorCode(err) != gust.EUNAVAILABLE || iv.isClosed() || ctx.Err() != nil {
			break
		}
	}
	if started != nil {
		switch code := gust.ErrorCode(err); {
		case err == nil:
			// Before the clock starts: the caller's bookkeeping is not
			// the function's time.
			if err := started(); err != nil {
				lease.Release(nil)
				return nil, true, err
			}
		case code == gust.ETHROTTLED || code == gust.ECAPACITY || code == gust.EUNAVAILABLE:
			return nil, true, err
		}
	}
	acquired := iv.cfg.Now()
	if lease != nil {
		inv.Cold = lease.Cold()
		inv.QueueWait = lease.QueueWait()
	} else {
		// A start that failed (or timed out) was a cold start all the
		// same: the caller waited for it, as the record must say.
		inv.Cold = pool.ColdStart(err)
	}
	// Spans are derived from the times already taken for the record, so
	// tracing adds no clock reads; off, this is a nil check.
	ctx, req, span := iv.cfg.Tracer.Acquired(ctx, req, inv, acquired, err)
	if err != nil {
		inv.Duration = acquired.Sub(inv.Start)
		inv.NotRun = true
		return nil, false, err
	}
	resp, err := iv.callInstance(ctx, lease.Instance(), v.Spec.Timeout.D(), req)
	end := iv.cfg.Now()
	inv.Duration = end.Sub(acquired)
	span.End(end, resp, err)
	lease.Release(err)
	if err != nil {
		iv.log.Warn("invocation failed", "function", v.Function, "version", v.Number,
			"invocation", req.ID, "code", gust.ErrorCode(err), "err", err)
		return nil, false, err
	}
	return resp, false, nil
}

// timedInstance is an instance that bounds a call by a timeout itself,
// without a context made for the call (the wasm driver's reactors keep
// one per instance, re-armed for each call). ctx gives the call its values
// only: its cancellation is not passed on.
type timedInstance interface {
	InvokeTimeout(ctx context.Context, timeout time.Duration, req *gust.Request) (*gust.Response, error)
}

// callInstance runs req on inst, detached from ctx's cancellation and
// bounded by timeout. A driver's panic becomes an EINTERNAL error, so the
// lease is released (and the instance discarded) like any failed call's:
// unrecovered, it would unwind past the release (the HTTP server recovers
// a handler's panic and carries on) and hold the instance and its
// concurrency slot for good.
func (iv *Invoker) callInstance(ctx context.Context, inst gust.Instance, timeout time.Duration, req *gust.Request) (_ *gust.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			iv.log.Error("running an invocation panicked", "function", req.Function, "version", req.Version,
				"invocation", req.ID, "panic", r, "stack", string(debug.Stack()))
			err = gust.Errorf(gust.EINTERNAL, "running function %s version %d failed: its driver panicked (a bug in gust; the server log has the details)", req.Function, req.Version)
		}
	}()
	if t, ok := inst.(timedInstance); ok {
		return t.InvokeTimeout(ctx, timeout, req)
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return inst.Invoke(callCtx, req)
}

// pool returns the pool of version v, loading its module on first use.
// Concurrent first calls share one load. now is when the call began (the
// pool's last use, for retiring it).
func (iv *Invoker) pool(ctx context.Context, v *gust.Version, now time.Time) (*pool.Pool, error) {
	k := key{v.Function, v.Number}
	iv.mu.RLock()
	e, ok := iv.pools[k]
	iv.mu.RUnlock()
	if !ok || v.CreatedAt.After(e.created) {
		iv.mu.Lock()
		if iv.closed {
			iv.mu.Unlock()
			return nil, gust.Errorf(gust.EUNAVAILABLE, "gust is shutting down")
		}
		e, ok = iv.pools[k]
		if ok && v.CreatedAt.After(e.created) {
			// The pool of an earlier function of this name, removed
			// and deployed again. (A call holding an older record than
			// the pool's is one that raced the redeploy: it runs on
			// the newer pool, as the next call would.)
			delete(iv.pools, k)
			iv.retireLocked(e)
			ok = false
		}
		if !ok {
			e = &entry{ready: make(chan struct{}), created: v.CreatedAt}
			iv.pools[k] = e
			go iv.load(v, e, nil)
		}
		iv.mu.Unlock()
	}
	e.lastUsed.Store(now.UnixNano())
	select {
	case <-e.ready:
	default:
		// Only a call that finds the module loading asks for ctx's Done:
		// a request context makes its channel on first use.
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, gust.WrapError(gust.EUNAVAILABLE, ctx.Err(), "request ended while function %q version %d was loading", v.Function, v.Number)
		}
		// Used as of now, when it is ready: a load slower than
		// RetireAfter must not let Reconcile retire the pool its
		// callers are about to use.
		e.lastUsed.Store(iv.cfg.Now().UnixNano())
	}
	if e.err != nil {
		return nil, e.err
	}
	return e.pool, nil
}

// load builds the pool of version v from module m, or loads the module
// from the registry's code if m is nil. A failed load is forgotten so the
// next call retries.
func (iv *Invoker) load(v *gust.Version, e *entry, m gust.Module) {
	defer close(e.ready)
	ctx := context.Background()
	if m == nil {
		var err error
		m, err = iv.loadModule(ctx, v)
		if err != nil {
			e.err = err
			iv.log.Error("loading function failed", "function", v.Function, "version", v.Number, "err", err)
			iv.mu.Lock()
			if iv.pools[key{v.Function, v.Number}] == e {
				delete(iv.pools, key{v.Function, v.Number})
			}
			iv.mu.Unlock()
			return
		}
	}
	s := v.Spec
	e.module = m
	e.pool = pool.New(m, pool.ConfigFor(v, iv.cfg.Budget, iv.log))
	if s.MinInstances > 0 {
		go func() {
			if err := e.pool.Prewarm(ctx); err != nil {
				iv.log.Warn("prewarming failed", "function", v.Function, "version", v.Number, "err", err)
			}
		}()
	}
}

func (iv *Invoker) loadModule(ctx context.Context, v *gust.Version) (gust.Module, error) {
	d, ok := iv.drivers[v.Spec.Runtime]
	if !ok {
		return nil, gust.Errorf(gust.EUNAVAILABLE, "runtime %q is not available on this node", v.Spec.Runtime)
	}
	code, err := iv.cfg.Registry.Code(ctx, v.CodeDigest)
	if err != nil {
		return nil, fmt.Errorf("fetching code of %s version %d: %w", v.Function, v.Number, err)
	}
	withSecrets, err := iv.withSecrets(ctx, v)
	if err != nil {
		return nil, err
	}
	m, err := d.Load(ctx, withSecrets, code, iv.cfg.Logs)
	if err != nil {
		return nil, fmt.Errorf("loading %s version %d: %w", v.Function, v.Number, err)
	}
	return m, nil
}

// withSecrets returns v with its secrets' values added to a copy of its
// environment, for the driver only: the registry's version never holds
// them.
func (iv *Invoker) withSecrets(ctx context.Context, v *gust.Version) (*gust.Version, error) {
	if len(v.Spec.Secrets) == 0 {
		return v, nil
	}
	if iv.cfg.Secrets == nil {
		return nil, gust.Errorf(gust.EUNAVAILABLE, "function %s lists secrets but this node has no secret store", v.Function)
	}
	vals, err := iv.cfg.Secrets.Values(ctx, v.Spec.Secrets)
	if gust.ErrorCode(err) == gust.ENOTFOUND {
		// Not the caller's 404: the function exists, a secret it lists
		// was removed after it was deployed.
		return nil, gust.WrapError(gust.EUNAVAILABLE, err, "function %s version %d cannot start: %s (a secret it lists was removed); set it again with `gust secret set`, or deploy a version that does not list it", v.Function, v.Number, gust.ErrorMessage(err))
	}
	if err != nil {
		return nil, fmt.Errorf("opening secrets of %s version %d: %w", v.Function, v.Number, err)
	}
	cp := *v
	// A memory snapshot would hold the opened values in a file on disk.
	off := false
	cp.Spec.Snapshot = &off
	cp.Spec.Env = make(map[string]string, len(v.Spec.Env)+len(vals))
	for k, val := range v.Spec.Env {
		cp.Spec.Env[k] = val
	}
	for k, val := range vals {
		cp.Spec.Env[k] = val
	}
	// The values are in Env now; a driver that validates the spec (the
	// process driver does) would otherwise refuse each one as both.
	cp.Spec.Secrets = nil
	return &cp, nil
}

// Prepare validates and compiles code for a version about to be deployed,
// so that bad code fails the deploy and not the first call. The module it
// returns is handed to Adopt once the registry has stored the version, or
// closed with Discard if the deploy fails.
func (iv *Invoker) Prepare(ctx context.Context, name string, next int, spec gust.Spec, code []byte) (gust.Module, error) {
	d, ok := iv.drivers[spec.Runtime]
	if !ok {
		return nil, gust.Errorf(gust.EINVALID, "runtime %q is not available on this node", spec.Runtime)
	}
	v, err := iv.withSecrets(ctx, &gust.Version{Function: name, Number: next, Spec: spec})
	if err != nil {
		return nil, err
	}
	return d.Load(ctx, v, code, iv.cfg.Logs)
}

// Adopt makes m, prepared for v, the module of v's pool, so the first call
// after a deploy does not load the code again. If the prediction of the
// version number was wrong (a concurrent deploy won) m is closed instead.
func (iv *Invoker) Adopt(v *gust.Version, predicted int, m gust.Module) {
	if m == nil {
		return
	}
	k := key{v.Function, v.Number}
	iv.mu.Lock()
	old, exists := iv.pools[k]
	if exists && v.CreatedAt.After(old.created) {
		// An earlier function of this name had this version number.
		delete(iv.pools, k)
		iv.retireLocked(old)
		exists = false
	}
	if predicted != v.Number || exists || iv.closed {
		iv.mu.Unlock()
		_ = m.Close(context.Background())
		return
	}
	e := &entry{ready: make(chan struct{}), created: v.CreatedAt}
	e.lastUsed.Store(iv.cfg.Now().UnixNano())
	iv.pools[k] = e
	iv.mu.Unlock()
	iv.load(v, e, m)
}

// Discard closes a prepared module that will not be adopted.
func (iv *Invoker) Discard(m gust.Module) {
	if m != nil {
		_ = m.Close(context.Background())
	}
}

// SnapshotState reports the memory-snapshot state of a version's module on
// this node, or "" if it is not loaded here or its driver has none.
func (iv *Invoker) SnapshotState(function string, version int) string {
	iv.mu.RLock()
	e, ok := iv.pools[key{function, version}]
	iv.mu.RUnlock()
	if !ok {
		return ""
	}
	select {
	case <-e.ready:
	default:
		return ""
	}
	if s, ok := e.module.(interface{ SnapshotState() string }); ok {
		return s.SnapshotState()
	}
	return ""
}

// Stats returns a snapshot of every pool on this node, sorted by function
// and version.
func (iv *Invoker) Stats() []gust.PoolStats {
	iv.mu.RLock()
	out := make([]gust.PoolStats, 0, len(iv.pools))
	for k, e := range iv.pools {
		select {
		case <-e.ready:
		default:
			out = append(out, gust.PoolStats{Function: k.fn, Version: k.ver})
			continue
		}
		if e.pool == nil {
			continue
		}
		out = append(out, poolStats(k, e.pool))
	}
	iv.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Reconcile brings pools in step with the registry: pools of versions that
// no alias points at (or of deleted functions) are drained and removed, and
// versions that aliases point at with minInstances get a prewarmed pool.
// It is called when the registry changes and periodically.
func (iv *Invoker) Reconcile(ctx context.Context) {
	fns, err := iv.cfg.Registry.Functions(ctx)
	if err != nil {
		iv.log.Warn("reconcile: listing functions failed", "err", err)
		return
	}
	wanted := map[key]bool{}
	for _, fn := range fns {
		for _, a := range fn.Aliases {
			for _, t := range a.Targets {
				wanted[key{fn.Name, t.Version}] = true
			}
		}
		if fn.Live > 0 {
			wanted[key{fn.Name, fn.Live}] = true
		}
	}
	now := iv.cfg.Now().UnixNano()
	iv.mu.Lock()
	for k, e := range iv.pools {
		if wanted[k] || now-e.lastUsed.Load() <= int64(RetireAfter) {
			continue
		}
		select {
		case <-e.ready:
		default:
			continue // still loading: callers are waiting for it
		}
		delete(iv.pools, k)
		iv.retireLocked(e)
	}
	iv.mu.Unlock()
	for k := range wanted {
		v, err := iv.cfg.Registry.Version(ctx, k.fn, k.ver)
		if err != nil || v.Spec.MinInstances == 0 {
			continue
		}
		if _, err := iv.pool(ctx, v, iv.cfg.Now()); err != nil {
			iv.log.Warn("reconcile: preparing provisioned instances failed", "function", k.fn, "version", k.ver, "err", err)
		}
	}
}

// retireLocked drains e, already out of the map, in the background: its
// calls in flight finish on the version they started on, then its
// instances and module close. iv.mu is held.
func (iv *Invoker) retireLocked(e *entry) {
	iv.retiring.Add(1)
	go func() {
		defer iv.retiring.Done()
		<-e.ready
		if e.pool != nil {
			s := e.pool.Stats()
			iv.log.Info("draining version no alias points at", "function", s.Function, "version", s.Version)
			_ = e.pool.Close(iv.retireCtx)
		}
	}()
}

func (iv *Invoker) isClosed() bool {
	iv.mu.RLock()
	defer iv.mu.RUnlock()
	return iv.closed
}

// Close drains every pool: in-flight calls finish, then instances and
// modules are closed.
func (iv *Invoker) Close(ctx context.Context) error {
	iv.mu.Lock()
	iv.closed = true
	pools := iv.pools
	iv.pools = map[key]*entry{}
	iv.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-e.ready
			if e.pool != nil {
				_ = e.pool.Close(ctx)
			}
		}()
	}
	wg.Wait()
	// And the pools already retired: until ctx ends, then forced, so
	// that no module stays open under a driver closed after this.
	retired := make(chan struct{})
	go func() {
		iv.retiring.Wait()
		close(retired)
	}()
	select {
	case <-retired:
	case <-ctx.Done():
		iv.retireCancel()
		<-retired
	}
	iv.retireCancel()
	return nil
}

// SetRecorder sets where invocation records go. Call it before serving.
func (iv *Invoker) SetRecorder(r gust.Recorder) { iv.cfg.Recorder = r }

func poolStats(k key, p *pool.Pool) gust.PoolStats {
	s := p.Stats().PoolStats
	s.Function, s.Version = k.fn, k.ver
	return s
}
