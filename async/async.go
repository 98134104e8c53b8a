package async

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/gateway"
	"github.com/gustfaas/gust/trace"
)

// Names in JetStream. Every node of a cluster must agree on them.
const (
	StreamAsync     = "GUST_ASYNC"       // events waiting to run
	SubjectAsync    = "gust.async."      // + function name
	StreamDLQ       = "GUST_DLQ"         // dead letters
	SubjectDLQ      = "gust.dlq."        // + function name
	BucketStatus    = "gust_invocations" // invocation id -> Status
	BucketIdem      = "gust_idempotency" // function.sha256(key) -> invocation id
	BucketTriggers  = "gust_triggers"    // cron.function.index -> last fired tick
	BucketHandbacks = "gust_handbacks"   // stream.consumer.seq -> a stream message's returns
	ConsumerWorkers = "gust-async-workers"
)

// HTTP headers of the async path.
const (
	HeaderInvocationID   = gateway.HeaderInvocationID
	HeaderCallbackURL    = "X-Gust-Callback-Url"
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderAttempt tells the function which attempt it is running: 1 for
	// the first, 2 for the first retry, ...
	HeaderAttempt = "X-Gust-Attempt"
)

// Prefix is the path prefix of async invocations.
const Prefix = "/async/"

// Defaults for Config's zero fields.
const (
	DefaultAckWait          = 30 * time.Second
	DefaultStatusTTL        = 7 * 24 * time.Hour
	DefaultDedupWindow      = 10 * time.Minute
	DefaultMaxResponseBytes = 256 << 10
	DefaultDLQMaxAge        = 14 * 24 * time.Hour
	DefaultThrottleDelay    = 500 * time.Millisecond
	DefaultHoldUnavailable  = 30 * time.Second
	DefaultCallbackRetries  = 3
	DefaultCallbackBackoff  = 1 * time.Second
	DefaultResyncEvery      = 30 * time.Second
	DefaultMaxList          = 1000
	DefaultPublishWindow    = 4096
	DefaultPublishTimeout   = 10 * time.Second
	DefaultHandbackTTL      = 24 * time.Hour
	// maxBackoff caps one retry delay whatever the doubling says.
	maxBackoff = 1 * time.Hour
)

// Invoker is what async needs from the invoker (invoke.Invoker).
type Invoker interface {
	Resolve(ctx context.Context, name, ref string) (*gust.Version, error)
	Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error)
}

// StartInvoker is an Invoker that tells its caller when an invocation has
// an instance. With it a worker keeps an event "queued", so cancellable,
// while the event waits for a free instance, and marks it "running" only
// once it has one; with a plain Invoker the event is marked running before
// the call and put back to queued if the call is throttled, and each such
// wait is recorded by the invoker as a throttled invocation.
type StartInvoker interface {
	Invoker
	// InvokeStarted is Invoke, except that started is called once, before
	// InvokeStarted returns, when an instance has been leased and before
	// the function runs. If started returns an error the instance goes
	// back unused, the function does not run and that error is returned.
	// A call that never starts, because no instance was free within the
	// queue timeout (ETHROTTLED, ECAPACITY), the version is shutting down
	// (EUNAVAILABLE) or started refused it, is not recorded: the caller
	// puts the event back, and it is neither an invocation nor a throttle
	// that a client saw.
	InvokeStarted(ctx context.Context, v *gust.Version, req *gust.Request, started func() error) (*gust.Response, error)
}

// Admitter is implemented by an invoker that can tell, before an event is
// stored, that a version can never run on this node (invoke.Invoker: an
// instance needs more memory than the node's whole budget). An accept of
// such a version is refused with that error, the answer /fn gives, rather
// than stored, retried and dead-lettered.
type Admitter interface {
	Admit(v *gust.Version) error
}

// Notifier is implemented by a registry that reports changes
// (registry.Registry). Without it triggers follow the registry by the
// periodic resync only.
type Notifier interface {
	OnChange(fn func(name string)) (cancel func())
}

// Config configures Async. Zero fields take the defaults above.
type Config struct {
	Invoker  Invoker
	Registry gust.Registry // if it is a Notifier too, triggers follow changes at once
	Replicas int           // of the streams and buckets: 1, or 3/5 on a cluster
	Workers  int           // concurrent async invocations on this node; default 2×NumCPU
	Logger   *slog.Logger
	NewID    func() string // invocation ids; required
	// Secrets gives webhook triggers their signing keys; without it every
	// webhook answers 503.
	Secrets SecretSource
	// Tracer records the spans of accepts (a server span per POST), cron
	// ticks and the queue wait, and the events carry their trace context
	// to the worker; nil or one without an endpoint records nothing.
	Tracer *trace.Tracer
	// Sync finds the records of invocations async never stored (calls to
	// /fn, NATS subject and stream triggers), so GET /v1/invocations/ID
	// answers for every id a caller was given; nil: only async ones.
	Sync SyncFinder

	// AckWait is how long a node may hold an event without word before
	// JetStream hands it to another; workers heartbeat at a third of it.
	AckWait          time.Duration
	StatusTTL        time.Duration // how long invocation statuses are kept
	DedupWindow      time.Duration // Idempotency-Key window
	MaxResponseBytes int           // response body kept in a status
	DLQMaxAge        time.Duration // how long dead letters are kept
	ThrottleDelay    time.Duration // base wait of a throttled event (jittered up to 2×)
	// HoldUnavailable is how long a stream message whose function is
	// unavailable or not found on this node is held before it is handed
	// back, untried, for another node (or this one, later) to take.
	HoldUnavailable time.Duration
	// HandbackTTL is how long a stream message's count of returns
	// (handbackKey) outlives its last return: the TTL of the handbacks
	// bucket. A settled message's count is removed at once; this bounds
	// the counts nobody settles: of a message that left its stream
	// (MaxAge, limits) before it came back, or written by a node that
	// went silent after another node settled the message. A count that
	// expires early costs attempts, never the message.
	HandbackTTL     time.Duration
	CallbackRetries int           // attempts after the first
	CallbackBackoff time.Duration // first callback retry delay, doubling
	CallbackClient  *http.Client  // default: 10s timeout, no redirects, public addresses only
	// CallbackAllowPrivate lets callbacks go to loopback, private,
	// link-local and other non-public addresses (see callbackaddr.go).
	CallbackAllowPrivate bool
	ResyncEvery          time.Duration // trigger resync period
	MaxList              int           // most dead letters listed or redriven per call
	// PublishWindow bounds the events being stored at once (published,
	// their acks awaited); an accept beyond it waits for a slot.
	PublishWindow int
	// PublishTimeout bounds how long an accept waits for a slot and then
	// for its event's ack before it fails (503).
	PublishTimeout time.Duration
	Now            func() time.Time
}

// Async accepts, stores and runs async invocations and runs triggers. Build
// it with New; it is safe for concurrent use.
type Async struct {
	cfg Config
	log *slog.Logger
	js  jetstream.JetStream
	nc  *nats.Conn
	// starter is cfg.Invoker if it is a StartInvoker, else nil.
	starter StartInvoker
	// pub publishes events asynchronously, sharing the connection's round
	// trips between concurrent accepts (see store).
	pub *publisher

	stream   jetstream.Stream
	dlq      jetstream.Stream
	status   jetstream.KeyValue
	idem     jetstream.KeyValue
	triggers jetstream.KeyValue
	// handbacksKV holds stream messages' counts of returns (handbackKey).
	handbacksKV jetstream.KeyValue

	maxPayload int64

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers, callbacks, trigger manager

	trig  *triggerManager
	hooks *hookTable

	closeOnce sync.Once
}

// New creates or updates the streams and buckets, starts the workers on the
// shared durable consumer and the trigger manager. Close stops them.
func New(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, cfg Config) (*Async, error) {
	if cfg.Invoker == nil || cfg.Registry == nil || cfg.NewID == nil {
		return nil, errors.New("async: Invoker, Registry and NewID are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2 * runtime.NumCPU()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AckWait, DefaultAckWait)
	def(&cfg.StatusTTL, DefaultStatusTTL)
	def(&cfg.DedupWindow, DefaultDedupWindow)
	def(&cfg.DLQMaxAge, DefaultDLQMaxAge)
	def(&cfg.ThrottleDelay, DefaultThrottleDelay)
	def(&cfg.HoldUnavailable, DefaultHoldUnavailable)
	def(&cfg.HandbackTTL, DefaultHandbackTTL)
	def(&cfg.CallbackBackoff, DefaultCallbackBackoff)
	def(&cfg.ResyncEvery, DefaultResyncEvery)
	def(&cfg.PublishTimeout, DefaultPublishTimeout)
	if cfg.PublishWindow <= 0 {
		cfg.PublishWindow = DefaultPublishWindow
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.CallbackRetries == 0 {
		cfg.CallbackRetries = DefaultCallbackRetries
	}
	if cfg.CallbackRetries < 0 {
		cfg.CallbackRetries = 0
	}
	if cfg.MaxList <= 0 {
		cfg.MaxList = DefaultMaxList
	}
	if cfg.CallbackClient == nil {
		cfg.CallbackClient = newCallbackClient(cfg.CallbackAllowPrivate)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Async{cfg: cfg, log: cfg.Logger.With("component", "async"), js: js, nc: nc, hooks: newHookTable()}
	a.starter, _ = cfg.Invoker.(StartInvoker)
	var err error
	a.stream, err = broker.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        StreamAsync,
		Description: "gust async invocations waiting to run",
		Subjects:    []string{SubjectAsync + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		// Cron ticks carry a message id too; this window covers the skew
		// between nodes firing the same tick.
		Duplicates: 2 * time.Minute,
		Replicas:   cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("async: %w", err)
	}
	a.dlq, err = broker.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        StreamDLQ,
		Description: "gust dead letters: events that failed every attempt",
		Subjects:    []string{SubjectDLQ + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      cfg.DLQMaxAge,
		Duplicates:  2 * time.Minute,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("async: %w", err)
	}
	a.status, err = broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketStatus, Description: "gust async invocation statuses",
		History: 1, TTL: cfg.StatusTTL, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("async: %w", err)
	}
	a.idem, err = broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketIdem, Description: "gust idempotency keys of async invocations",
		History: 1, TTL: cfg.DedupWindow, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("async: %w", err)
	}
	a.triggers, err = broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketTriggers, Description: "gust trigger state: last fired cron ticks",
		History: 1, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("async: %w", err)
	}
	// The counts of returns have a bucket of their own, with a TTL: the
	// cron ticks must not expire, and a per-key TTL in the triggers
	// bucket would turn on message TTLs in its stream, which JetStream
	// never lets a node turn off again, so a node of an older gust could
	// no longer open it.
	a.handbacksKV, err = broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketHandbacks, Description: "gust stream triggers: how often a message was handed back untried",
		History: 1, TTL: cfg.HandbackTTL, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("async: %w", err)
	}
	// Counts were kept in the triggers bucket once, without a TTL; those
	// no settling removed would stay for ever. A node of an older gust
	// still writing there meanwhile loses at most attempts.
	a.purgeState(BucketTriggers, "$KV."+BucketTriggers+".handback.>")
	a.maxPayload = nc.MaxPayload()
	a.pub, err = newPublisher(nc, cfg.PublishWindow, cfg.PublishTimeout)
	if err != nil {
		return nil, fmt.Errorf("async: publisher: %w", err)
	}

	cons, err := a.js.CreateOrUpdateConsumer(ctx, StreamAsync, jetstream.ConsumerConfig{
		Durable:       ConsumerWorkers,
		Description:   "gust async workers, shared by every node",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1, // attempts are counted in the status, not by deliveries
		MaxAckPending: 100000,
		FilterSubject: SubjectAsync + ">",
	})
	if err != nil {
		a.pub.close()
		return nil, fmt.Errorf("async: create consumer %s: %w", ConsumerWorkers, err)
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	if err := a.startWorkers(cons); err != nil {
		a.cancel()
		a.pub.close()
		return nil, err
	}
	a.trig = newTriggerManager(a)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.trig.run(a.ctx)
	}()
	return a, nil
}

// Routes registers `/async/` (public, like /fn/; POST accepts, another
// method is answered 405) and the admin routes (see AdminRoutes) behind
// require.
func (a *Async) Routes(mux *http.ServeMux, require func(http.Handler) http.Handler) {
	mux.Handle(Prefix, a.AcceptHandler())
	for pattern, h := range a.AdminRoutes() {
		mux.Handle(pattern, require(h))
	}
}

// AcceptHandler serves `POST /async/NAME[@REF][/...]`. It is public, like
// /fn/. Another method is answered 405 in the JSON error shape, with
// Allow: POST, so mount it for every method.
func (a *Async) AcceptHandler() http.Handler { return http.HandlerFunc(a.serveAccept) }

// AdminRoutes maps the admin route patterns to their handlers, for a
// caller that applies its own auth and scopes: the GETs read; DELETE
// /v1/invocations/{id} cancels; the dlq POST and DELETE change state.
func (a *Async) AdminRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /v1/invocations/{id}":              http.HandlerFunc(a.serveGetStatus),
		"DELETE /v1/invocations/{id}":           http.HandlerFunc(a.serveCancel),
		"GET /v1/functions/{name}/dlq":          http.HandlerFunc(a.serveDLQList),
		"POST /v1/functions/{name}/dlq/redrive": http.HandlerFunc(a.serveDLQRedrive),
		"DELETE /v1/functions/{name}/dlq":       http.HandlerFunc(a.serveDLQPurge),
	}
}

// Close stops the triggers and the workers, waits for invocations in
// flight and pending callbacks (bounded by ctx), and leaves unfinished
// events in the stream for another node or the next start.
func (a *Async) Close(ctx context.Context) error {
	var err error
	a.closeOnce.Do(func() {
		a.cancel()
		done := make(chan struct{})
		go func() {
			a.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("async: close: %w", ctx.Err())
		}
		// Accepts still waiting for an ack fail (503) now; until here
		// the publisher's sweep timed them out.
		a.pub.close()
	})
	return err
}

func (a *Async) now() time.Time { return a.cfg.Now() }

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
