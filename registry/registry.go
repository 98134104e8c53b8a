package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names. Every node of a cluster must agree on them.
const (
	KVBucket   = "gust_registry"
	CodeBucket = "gust_code"
)

// DefaultMaxCodeBytes is the largest code artifact Deploy accepts when
// Config.MaxCodeBytes is zero. The artifact is held in memory whole, by the
// deployer and by every driver that compiles it.
const DefaultMaxCodeBytes = 128 << 20

// openTimeout bounds loading the bucket into memory when the caller's
// context has no deadline of its own.
const openTimeout = 30 * time.Second

// Config configures a Registry.
type Config struct {
	// Replicas for the KV bucket and object store: 1 on a single node, 3 or
	// 5 on a JetStream cluster. Zero means 1.
	Replicas int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// MaxCodeBytes is the largest artifact Deploy accepts. Zero means
	// DefaultMaxCodeBytes.
	MaxCodeBytes int64
}

// Registry is gust.Registry on JetStream. Build it with Open; it is safe for
// concurrent use.
type Registry struct {
	kv      jetstream.KeyValue
	obs     jetstream.ObjectStore
	log     *slog.Logger
	maxCode int64
	cache   *cache
	codeMu  keyedMutex

	watcher   jetstream.KeyWatcher
	watchDone chan struct{}
	stopWatch context.CancelFunc
	closeOnce sync.Once

	lmu       sync.Mutex
	listeners map[uint64]func(name string)
	nextID    uint64
}

var _ gust.Registry = (*Registry)(nil)

// Open creates or updates the registry's buckets on js, loads the KV bucket
// into memory and keeps it current with a watch until Close. It returns once
// everything stored before the call is readable.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Registry, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxCodeBytes <= 0 {
		cfg.MaxCodeBytes = DefaultMaxCodeBytes
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      KVBucket,
		Description: "gust functions, versions and aliases",
		History:     1,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	obs, err := broker.EnsureObjectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket:      CodeBucket,
		Description: "gust code artifacts, named by the hex of their sha256",
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	log := cfg.Logger.With("component", "registry")
	r := &Registry{
		kv:        kv,
		obs:       obs,
		log:       log,
		maxCode:   cfg.MaxCodeBytes,
		cache:     newCache(log),
		watchDone: make(chan struct{}),
		listeners: map[uint64]func(string){},
	}
	// The watch outlives Open's ctx: its ordered consumer is re-created with
	// this context after a reconnect, so it must stay live until Close.
	watchCtx, stop := context.WithCancel(context.Background())
	r.stopWatch = stop
	w, err := kv.WatchAll(watchCtx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("registry: watch %s: %w", KVBucket, err)
	}
	r.watcher = w
	loaded := make(chan struct{})
	go r.watch(loaded)
	select {
	case <-loaded:
	case <-ctx.Done():
		r.Close()
		return nil, fmt.Errorf("registry: load %s: %w", KVBucket, ctx.Err())
	}
	r.log.Debug("registry loaded", "functions", len(r.cache.functions()))
	return r, nil
}

// watch applies the bucket's changes to the cache until the watcher stops.
// It closes loaded once the initial values are in.
func (r *Registry) watch(loaded chan struct{}) {
	defer close(r.watchDone)
	initial := true
	for e := range r.watcher.Updates() {
		if e == nil {
			if initial {
				initial = false
				close(loaded)
			}
			continue
		}
		deleted := e.Operation() != jetstream.KeyValuePut
		if name, changed := r.cache.apply(e.Key(), e.Revision(), deleted, e.Value()); changed {
			r.notify(name)
		}
	}
}

// Close stops the watch. Reads keep answering from the last known state;
// writes still work but other nodes' changes are no longer seen.
func (r *Registry) Close() {
	r.closeOnce.Do(func() {
		// Stop fails if the connection is already closed, which also ends
		// the watch, so the error says nothing worth acting on.
		_ = r.watcher.Stop()
		r.stopWatch()
		select {
		case <-r.watchDone:
		case <-time.After(5 * time.Second):
			r.log.Warn("registry watch did not stop")
		}
	})
}

// OnChange registers fn to be called with a function's name whenever its
// record or one of its versions changes, here or on another node. fn runs
// on the goroutine that saw the change (the watch, or the writer), so it
// must return quickly; it may call the Registry. The returned func
// unregisters fn.
func (r *Registry) OnChange(fn func(name string)) (cancel func()) {
	r.lmu.Lock()
	id := r.nextID
	r.nextID++
	r.listeners[id] = fn
	r.lmu.Unlock()
	return func() {
		r.lmu.Lock()
		delete(r.listeners, id)
		r.lmu.Unlock()
	}
}

func (r *Registry) notify(name string) {
	r.lmu.Lock()
	fns := make([]func(string), 0, len(r.listeners))
	for _, fn := range r.listeners {
		fns = append(fns, fn)
	}
	r.lmu.Unlock()
	for _, fn := range fns {
		fn(name)
	}
}

// applyPut and applyDelete make a write visible to this Registry's readers
// before the write returns, instead of when the watch gets round to it.
func (r *Registry) applyPut(key string, rev uint64, value []byte) {
	if name, changed := r.cache.apply(key, rev, false, value); changed {
		r.notify(name)
	}
}

// applyDelete takes the revision the key had before it was deleted: the
// delete marker's own revision is not returned by JetStream, but it is
// greater, and no other write of the key can fall in between (deletes are
// conditional on that revision or, for version keys, follow the last write).
func (r *Registry) applyDelete(key string, prevRev uint64) {
	if name, changed := r.cache.apply(key, prevRev+1, true, nil); changed {
		r.notify(name)
	}
}

// Function returns one function from memory. Errors: ENOTFOUND.
func (r *Registry) Function(ctx context.Context, name string) (*gust.Function, error) {
	f, err := r.ViewFunction(ctx, name)
	if err != nil {
		return nil, err
	}
	return cloneFunction(f), nil
}

// Functions lists every function from memory, sorted by name.
func (r *Registry) Functions(context.Context) ([]*gust.Function, error) {
	return r.cache.functions(), nil
}

// Version returns one version from memory. Errors: ENOTFOUND.
func (r *Registry) Version(ctx context.Context, name string, number int) (*gust.Version, error) {
	v, err := r.ViewVersion(ctx, name, number)
	if err != nil {
		return nil, err
	}
	return cloneVersion(v), nil
}

// ViewFunction and ViewVersion are Function and Version without the copy,
// for the invocation path, where a copy of the function's aliases and the
// version's environment on every request is measurable. What they return
// is shared with every other reader and must not be modified. That is safe
// to hand out because the cache never changes an object it holds: an update
// replaces it.
func (r *Registry) ViewFunction(_ context.Context, name string) (*gust.Function, error) {
	if f := r.cache.view(name); f != nil {
		return f, nil
	}
	return nil, notFound(name)
}

// ViewVersion: see ViewFunction.
func (r *Registry) ViewVersion(_ context.Context, name string, number int) (*gust.Version, error) {
	v, fnExists := r.cache.viewVersion(name, number)
	if !fnExists {
		return nil, notFound(name)
	}
	if v == nil {
		return nil, gust.Errorf(gust.ENOTFOUND, "function %q has no version %d", name, number)
	}
	return v, nil
}

// Versions lists a function's versions from memory, oldest first.
// Errors: ENOTFOUND.
func (r *Registry) Versions(_ context.Context, name string) ([]*gust.Version, error) {
	vs, ok := r.cache.versions(name)
	if !ok {
		return nil, notFound(name)
	}
	return vs, nil
}

func notFound(name string) error {
	return gust.Errorf(gust.ENOTFOUND, "function %q not found", name)
}

// scan reads the current values of the keys matching filter straight from
// JetStream, for decisions that must not rest on a cache another node may
// not have caught up with yet.
func (r *Registry) scan(ctx context.Context, filter string) ([]jetstream.KeyValueEntry, error) {
	w, err := r.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", filter, err)
	}
	defer func() {
		_ = w.Stop()
		// The watcher blocks delivering into a full channel; drain it so
		// its goroutine can see the stop and close the channel.
		go func() {
			for range w.Updates() {
			}
		}()
	}()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("scan %s: watch closed", filter)
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, fmt.Errorf("scan %s: %w", filter, ctx.Err())
		}
	}
}

// isConflict reports whether err is a lost optimistic-concurrency race.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
