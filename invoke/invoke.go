package invoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sort"
	"strconv"
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
	ready    chan struct{}
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
	for _, d := range cfg.Drivers {
		iv.drivers[d.Runtime()] = d
	}
	return iv
}

// NewID returns a new invocation id: 32 hex digits of randomness.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// viewer is a registry that can hand out its cached records without
// copying them (registry.Registry does); Resolve prefers it, since it runs
// on every request.
type viewer interface {
	ViewFunction(ctx context.Context, name string) (*gust.Function, error)
	ViewVersion(ctx context.Context, name string, number int) (*gust.Version, error)
}

// Resolve finds the version that a reference to a function names: ref ""
// means the live alias; a number names a version; anything else names an
// alias, whose weights pick one version. Errors: ENOTFOUND.
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
	case isDigits(ref):
		number, _ = strconv.Atoi(ref)
	default:
		number = pick(fn, ref)
		if number == 0 {
			return nil, gust.Errorf(gust.ENOTFOUND, "function %q has no alias %q", name, ref)
		}
	}
	if number == 0 {
		return nil, gust.Errorf(gust.ENOTFOUND, "function %q has no live version", name)
	}
	var v *gust.Version
	if view {
		v, err = vw.ViewVersion(ctx, name, number)
	} else {
		v, err = iv.cfg.Registry.Version(ctx, name, number)
	}
	if err != nil {
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			return nil, gust.Errorf(gust.ENOTFOUND, "function %q has no version %d", name, number)
		}
		return nil, err
	}
	return v, nil
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
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != "" && len(s) < 10
}

// Invoke runs req on an instance of version v and returns what the function
// answered. req.ID, Function and Version are filled in if empty. The
// invocation record is handed to the Recorder whatever the outcome.
//
// The call is detached from ctx's cancellation (a client that hangs up does
// not kill a warm instance mid-call, as on Lambda) but bounded by the
// version's timeout.
func (iv *Invoker) Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error) {
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
	resp, err := iv.invoke(ctx, v, req, inv)
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

func (iv *Invoker) invoke(ctx context.Context, v *gust.Version, req *gust.Request, inv *gust.Invocation) (*gust.Response, error) {
	var lease *pool.Lease
	var err error
	// A pool retired by Reconcile between lookup and Acquire answers
	// EUNAVAILABLE; the next lookup makes a fresh one.
	for attempt := 0; attempt < 3; attempt++ {
		var p *pool.Pool
		p, err = iv.pool(ctx, v)
		if err != nil {
			return nil, err
		}
		lease, err = p.Acquire(ctx)
		if gust.ErrorCode(err) != gust.EUNAVAILABLE || iv.isClosed() {
			break
		}
	}
	acquired := iv.cfg.Now()
	if lease != nil {
		inv.Cold = lease.Cold()
		inv.QueueWait = lease.QueueWait()
	}
	// Spans are derived from the times already taken for the record, so
	// tracing adds no clock reads; off, this is a nil check.
	ctx, req, span := iv.cfg.Tracer.Acquired(ctx, req, inv, acquired, err)
	if err != nil {
		inv.Duration = acquired.Sub(inv.Start)
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.Spec.Timeout.D())
	resp, err := lease.Instance().Invoke(callCtx, req)
	cancel()
	end := iv.cfg.Now()
	inv.Duration = end.Sub(acquired)
	span.End(end, resp, err)
	lease.Release(err)
	if err != nil {
		iv.log.Warn("invocation failed", "function", v.Function, "version", v.Number,
			"invocation", req.ID, "code", gust.ErrorCode(err), "err", err)
		return nil, err
	}
	return resp, nil
}

// pool returns the pool of version v, loading its module on first use.
// Concurrent first calls share one load.
func (iv *Invoker) pool(ctx context.Context, v *gust.Version) (*pool.Pool, error) {
	k := key{v.Function, v.Number}
	iv.mu.RLock()
	e, ok := iv.pools[k]
	iv.mu.RUnlock()
	if !ok {
		iv.mu.Lock()
		if iv.closed {
			iv.mu.Unlock()
			return nil, gust.Errorf(gust.EUNAVAILABLE, "gust is shutting down")
		}
		e, ok = iv.pools[k]
		if !ok {
			e = &entry{ready: make(chan struct{})}
			iv.pools[k] = e
			go iv.load(v, e, nil)
		}
		iv.mu.Unlock()
	}
	e.lastUsed.Store(iv.cfg.Now().UnixNano())
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, gust.WrapError(gust.EUNAVAILABLE, ctx.Err(), "request ended while function %q version %d was loading", v.Function, v.Number)
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
	_, exists := iv.pools[k]
	if predicted != v.Number || exists || iv.closed {
		iv.mu.Unlock()
		_ = m.Close(context.Background())
		return
	}
	e := &entry{ready: make(chan struct{})}
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
	var drop []*entry
	now := iv.cfg.Now().UnixNano()
	iv.mu.Lock()
	for k, e := range iv.pools {
		if !wanted[k] && now-e.lastUsed.Load() > int64(RetireAfter) {
			drop = append(drop, e)
			delete(iv.pools, k)
		}
	}
	iv.mu.Unlock()
	for _, e := range drop {
		go func() {
			<-e.ready
			if e.pool != nil {
				s := e.pool.Stats()
				iv.log.Info("draining version no alias points at", "function", s.Function, "version", s.Version)
				_ = e.pool.Close(context.Background())
			}
		}()
	}
	for k := range wanted {
		v, err := iv.cfg.Registry.Version(ctx, k.fn, k.ver)
		if err != nil || v.Spec.MinInstances == 0 {
			continue
		}
		if _, err := iv.pool(ctx, v); err != nil {
			iv.log.Warn("reconcile: preparing provisioned instances failed", "function", k.fn, "version", k.ver, "err", err)
		}
	}
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
	return nil
}

// SetRecorder sets where invocation records go. Call it before serving.
func (iv *Invoker) SetRecorder(r gust.Recorder) { iv.cfg.Recorder = r }

func poolStats(k key, p *pool.Pool) gust.PoolStats {
	s := p.Stats().PoolStats
	s.Function, s.Version = k.fn, k.ver
	return s
}
