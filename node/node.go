package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/async"
	"github.com/gustfaas/gust/auth"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/cluster"
	"github.com/gustfaas/gust/console"
	"github.com/gustfaas/gust/gateway"
	"github.com/gustfaas/gust/invoke"
	"github.com/gustfaas/gust/kv"
	"github.com/gustfaas/gust/logs"
	"github.com/gustfaas/gust/meter"
	"github.com/gustfaas/gust/metrics"
	"github.com/gustfaas/gust/pool"
	"github.com/gustfaas/gust/process"
	"github.com/gustfaas/gust/registry"
	"github.com/gustfaas/gust/routes"
	"github.com/gustfaas/gust/secrets"
	"github.com/gustfaas/gust/stats"
	"github.com/gustfaas/gust/trace"
	"github.com/gustfaas/gust/wasm"
)

// Version is gust's version, reported by /v1/status and `gust version`.
var Version = "0.1.0-dev"

// Config configures a node. Zero fields take defaults.
type Config struct {
	DataDir    string // default ./gust-data
	Listen     string // default 127.0.0.1:8080; port 0 picks one
	NATSURL    string // external NATS; "" runs it embedded
	SyncAlways bool   // fsync every JetStream write (embedded NATS)
	// MaxPayload is the embedded NATS server's max_payload in bytes: the
	// largest message, which bounds an async event (body, headers and
	// metadata) and a call forwarded to another node. 0 means
	// DefaultMaxPayload; it must be 0 with NATSURL, whose servers' own
	// max_payload applies. See CheckMaxPayload for the range.
	MaxPayload   int64
	Replicas     int   // replicas of streams and buckets; 0: 3 on a NATS cluster of 3 or more servers, else 1
	MemoryBudget int   // MB for all instances on this node; default DefaultMemoryBudget()
	MaxCodeBytes int64 // largest accepted artifact; default api.DefaultMaxCodeBytes
	Metering     *bool // usage records and metrics; default on
	// CallbackAllowPrivate lets async callbacks (X-Gust-Callback-Url) go
	// to loopback, private and link-local addresses; off, only to public ones.
	CallbackAllowPrivate    bool
	PricePerGBSecond        float64
	PricePerMillionRequests float64
	ReconcileEvery          time.Duration // default 2s
	MasterKeyFile           string        // keyring of the secret master keys; default DATA/master.key
	MasterKey               string        // the master key itself (GUST_MASTER_KEY); overrides MasterKeyFile
	TLSCert                 string        // PEM certificate file; with TLSKey serves HTTPS
	TLSKey                  string
	TLSSelfSigned           bool          // serve HTTPS with a self-signed certificate kept in DATA/tls
	WasmCacheDir            string        // compiled-module cache; default DATA/cache/wasm
	OTLPEndpoint            string        // OTLP/HTTP receiver of spans, "http://127.0.0.1:4318"; "" turns tracing off
	NodeID                  string        // id in the cluster; default host name and random digits
	Advertise               string        // base URL other nodes and `gust nodes` show; default the node's URL
	HeartbeatEvery          time.Duration // cluster heartbeat interval; default cluster.DefaultInterval
	// WasmDial opens wasm functions' outbound connections (after their
	// allowedHosts check); nil: the system's resolver. Tests map names.
	WasmDial func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger   *slog.Logger
}

// Bounds of Config.MaxPayload. The default leaves a function's default
// body limit (gust.DefaultMaxBodyBytes, 6 MB) room for 64 KB of headers
// and the event's metadata, so /async takes what /fn takes. The least is
// nats-server's own default: below it nothing gets better and deploys
// fail (code is stored in 128 KB object-store chunks; at 64 KB a deploy
// failed with "maximum payload exceeded"). The most is nats-server's:
// no max_payload above its max_pending, 64 MB.
const (
	DefaultMaxPayload = 8 << 20
	MinMaxPayload     = 1 << 20
	MaxMaxPayload     = 64 << 20
)

// CheckMaxPayload returns an EINVALID error naming setting (as the user
// spells it) unless size is within MinMaxPayload..MaxMaxPayload.
func CheckMaxPayload(setting string, size int64) error {
	if size < MinMaxPayload || size > MaxMaxPayload {
		return gust.Errorf(gust.EINVALID, "invalid %s of %d bytes: want 1MB (%d, nats-server's default) to 64MB (%d, the most nats-server allows)",
			setting, size, int64(MinMaxPayload), int64(MaxMaxPayload))
	}
	return nil
}

// DefaultMemoryBudget is half of the machine's memory, in MB, leaving the
// rest to gust itself, the page cache and the operating system.
func DefaultMemoryBudget() int {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil || si.Totalram == 0 {
		return 2048
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	return int(total / 2 / (1 << 20))
}

// Node is a running gust node.
type Node struct {
	cfg       Config
	log       *slog.Logger
	brk       *broker.Broker
	reg       *registry.Registry
	wasm      *wasm.Driver
	process   *process.Driver
	budget    *pool.Budget
	inv       *invoke.Invoker
	meter     *meter.Meter
	stats     *stats.Stats
	tracer    *trace.Tracer
	logs      *logs.Store
	secrets   *secrets.Store
	async     *async.Async
	cluster   *cluster.Cluster
	api       *api.API
	srv       *http.Server
	ln        net.Listener
	tokenPath string
	tls       bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	dataLock  *os.File // held from Start to the end of Close
}

// Start starts a node and returns once it serves HTTP and /healthz is 200.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "gust-data"
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = DefaultMemoryBudget()
	}
	if cfg.ReconcileEvery == 0 {
		cfg.ReconcileEvery = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NATSURL != "" && cfg.MaxPayload != 0 {
		return nil, gust.Errorf(gust.EINVALID, "a max payload applies to the embedded NATS server only; with an external NATS (--nats) set max_payload in its servers' configuration instead")
	}
	if cfg.NATSURL == "" {
		if cfg.MaxPayload == 0 {
			cfg.MaxPayload = DefaultMaxPayload
		}
		if err := CheckMaxPayload("max payload", cfg.MaxPayload); err != nil {
			return nil, err
		}
	}
	metering := cfg.Metering == nil || *cfg.Metering
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n = &Node{cfg: cfg, log: log, dataLock: lock}
	// started, not n: a failing "return nil, err" has set n to nil by the
	// time this runs, and what did start must still be stopped.
	started := n
	defer func() {
		if err != nil {
			started.Close(context.Background())
		}
	}()
	// First: a bad --otlp-endpoint fails before anything starts.
	n.tracer, err = trace.New(trace.Config{
		Endpoint: cfg.OTLPEndpoint, ServiceVersion: Version, Logger: log.With("part", "trace"),
	})
	if err != nil {
		return nil, err
	}

	a, tokenPath, created, err := auth.LoadOrCreate(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n.tokenPath = tokenPath
	if created {
		log.Info("created admin token", "path", tokenPath)
	}

	n.brk, err = broker.Start(ctx, broker.Config{
		DataDir: cfg.DataDir, URL: cfg.NATSURL, SyncAlways: cfg.SyncAlways,
		MaxPayload: int32(cfg.MaxPayload),
		Replicas:   cfg.Replicas, Logger: log.With("part", "broker"),
	})
	if err != nil {
		return nil, fmt.Errorf("starting broker: %w", err)
	}
	// Zero replicas asked the broker to choose from the cluster's size.
	cfg.Replicas = n.brk.Replicas()
	n.cfg.Replicas = cfg.Replicas
	js := n.brk.JetStream()
	n.reg, err = registry.Open(ctx, js, registry.Config{Replicas: cfg.Replicas, Logger: log.With("part", "registry")})
	if err != nil {
		return nil, fmt.Errorf("opening registry: %w", err)
	}
	if cfg.WasmCacheDir == "" {
		cfg.WasmCacheDir = filepath.Join(cfg.DataDir, "cache", "wasm")
	}
	kvs := kv.New(js, cfg.Replicas)
	n.wasm, err = wasm.New(wasm.Config{
		CacheDir: cfg.WasmCacheDir, Logger: log.With("part", "wasm"),
		Archive: n.reg.Code, Dial: cfg.WasmDial,
		KV: func(ctx context.Context, fn string) (wasm.KV, error) { return kvs.Open(ctx, fn) },
	})
	if err != nil {
		return nil, fmt.Errorf("starting wasm driver: %w", err)
	}
	n.process, err = process.New(process.Config{WorkDir: filepath.Join(cfg.DataDir, "process"), Logger: log.With("part", "process")})
	if err != nil {
		return nil, fmt.Errorf("starting process driver: %w", err)
	}
	n.budget = pool.NewBudget(cfg.MemoryBudget)

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// Kept with metering off too: a dropped callback is lost for good,
		// and this counter is the only trace besides a log line.
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gust_async_callbacks_dropped_total",
			Help: "Async callbacks (X-Gust-Callback-Url) not sent because async.MaxCallbacks were already in flight.",
		}, func() float64 { return float64(async.CallbacksDropped()) }))
	var recorders []gust.Recorder
	var usage http.Handler
	var mets *metrics.Metrics
	n.stats = stats.New(stats.Config{})
	recorders = append(recorders, n.stats)
	if metering {
		n.meter, err = meter.New(ctx, js, meter.Config{
			Replicas: cfg.Replicas, PricePerGBSecond: cfg.PricePerGBSecond,
			PricePerMillionRequests: cfg.PricePerMillionRequests, Logger: log.With("part", "meter"),
		})
		if err != nil {
			return nil, fmt.Errorf("starting meter: %w", err)
		}
		usage = n.meter.Handler()
		recorders = append(recorders, n.meter)
	}
	n.logs, err = logs.NewStore(ctx, js, logs.StoreConfig{
		Replicas: cfg.Replicas, Echo: log.With("part", "function"), Logger: log.With("part", "logs"),
		Functions: n.reg, // logs of a function that never existed: 404
	})
	if err != nil {
		return nil, fmt.Errorf("starting log store: %w", err)
	}
	keys, keyCreated, err := secrets.LoadKeyring(cfg.DataDir, cfg.MasterKeyFile, cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	if keyCreated {
		log.Info("created master key for secrets", "path", filepath.Join(cfg.DataDir, secrets.KeyFile))
	}
	n.secrets, err = secrets.Open(ctx, js, cfg.Replicas, keys)
	if err != nil {
		return nil, err
	}
	n.secrets.CheckUses(n.reg)
	n.inv = invoke.New(invoke.Config{
		Tracer:   n.tracer,
		Secrets:  n.secrets,
		Registry: n.reg,
		Drivers:  append([]gust.Driver{n.wasm}, n.process.Drivers()...),
		Budget:   n.budget,
		Logs:     n.logs,
		Events:   n.logs,
		Logger:   log.With("part", "invoker"),
	})
	if metering {
		mets = metrics.New(promReg, n.inv.Stats)
		recorders = append(recorders, mets)
	}
	// The console's live stats stay on with metering off: they are memory
	// only and cost one histogram update per invocation.
	n.inv.SetRecorder(metrics.Multi(recorders...))

	n.cluster, err = cluster.New(cluster.Config{
		Conn: n.brk.Conn(), Local: n.inv, ID: cfg.NodeID, Version: Version, Interval: cfg.HeartbeatEvery,
		Budget: func() (int, int) {
			s := n.budget.Stats()
			return s.TotalMB, s.UsedMB
		},
		Logger: log.With("part", "cluster"),
	})
	if err != nil {
		return nil, fmt.Errorf("starting cluster membership: %w", err)
	}
	acfg := async.Config{
		Invoker: n.inv, Registry: n.reg, Replicas: cfg.Replicas,
		NewID: invoke.NewID, Logger: log.With("part", "async"), Secrets: n.secrets,
		Tracer: n.tracer, CallbackAllowPrivate: cfg.CallbackAllowPrivate,
	}
	if n.meter != nil {
		acfg.Sync = n.meter // GET /v1/invocations/ID of a sync call
	}
	n.async, err = async.New(ctx, js, n.brk.Conn(), acfg)
	if err != nil {
		return nil, fmt.Errorf("starting async invocations: %w", err)
	}
	tokens, err := auth.OpenTokens(ctx, js, cfg.Replicas, a)
	if err != nil {
		return nil, err
	}
	apiKeys, err := routes.OpenKeys(ctx, js, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	guard := routes.New(routes.Config{Tokens: tokens, Secrets: n.secrets, Keys: apiKeys, NewID: invoke.NewID, Logger: log.With("part", "routes")})
	extra := map[string]api.Route{
		"GET /v1/functions/{name}/logs": {Scope: api.ScopeRead, Handler: n.logs.Handler()},
		"GET /v1/nodes":                 {Scope: api.ScopeRead, Handler: n.cluster.NodesHandler()},
	}
	for pattern, h := range tokens.Routes() {
		extra[pattern] = api.Route{Scope: api.ScopeAdmin, Handler: h}
	}
	for pattern, h := range n.async.AdminRoutes() {
		scope := api.ScopeDeploy
		if strings.HasPrefix(pattern, "GET ") {
			scope = api.ScopeRead
		}
		extra[pattern] = api.Route{Scope: scope, Handler: h}
	}
	for pattern, h := range n.secrets.Routes() {
		extra[pattern] = api.Route{Scope: api.ScopeAdmin, Handler: h}
	}
	for pattern, h := range apiKeys.Routes() {
		scope := api.ScopeDeploy
		if strings.HasPrefix(pattern, "GET ") {
			scope = api.ScopeRead
		}
		extra[pattern] = api.Route{Scope: scope, Handler: h}
	}
	if n.meter != nil {
		extra["GET /v1/invocations"] = api.Route{Scope: api.ScopeRead, Handler: n.meter.HistoryHandler()}
	}
	for pattern, h := range n.stats.Routes() {
		extra[pattern] = api.Route{Scope: api.ScopeRead, Handler: h}
	}
	n.api = api.New(api.Config{
		Registry: n.reg,
		Deployer: n.inv,
		Budget: func() (int, int) {
			s := n.budget.Stats()
			return s.TotalMB, s.UsedMB
		},
		Usage: usage,
		Extra: extra,
		OnDelete: []func(context.Context, string) error{
			kvs.Remove,
			func(ctx context.Context, name string) error {
				_, err := apiKeys.RevokeAll(ctx, name)
				return err
			},
		},
		Validate: []func(context.Context, gust.Spec) error{
			func(_ context.Context, s gust.Spec) error { return async.ValidateSpec(s) },
			guard.ValidateSpec,
		},
		// Checked at deploy and again when a rollback or an alias sends
		// traffic to a stored version: what it needs may be gone or taken
		// since it was deployed.
		ValidateNamed: []func(context.Context, string, gust.Spec) error{
			func(ctx context.Context, _ string, s gust.Spec) error {
				var names []string
				for _, r := range s.SecretRefs() {
					names = append(names, r.Name)
				}
				return n.secrets.Exists(ctx, names)
			},
			func(ctx context.Context, name string, s gust.Spec) error {
				return async.CheckWebhookPaths(ctx, n.reg, name, s)
			},
		},
		Require:      tokens.Require,
		Permits:      auth.Permits,
		Archives:     n.reg,
		MaxCodeBytes: cfg.MaxCodeBytes,
		Version:      Version,
		Logger:       log.With("part", "api"),
	})
	gw := gateway.New(gateway.Config{Invoker: n.cluster, Tracer: n.tracer, NewID: invoke.NewID, Guard: guard, Logger: log.With("part", "gateway")})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	if mets != nil {
		mux.Handle("GET /metrics", mets.Handler())
	} else {
		mux.Handle("GET /metrics", promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))
	}
	mux.Handle("/v1/", n.api)
	mux.Handle(gateway.Prefix, gw)
	mux.Handle("POST "+async.Prefix, guard.Guard(async.Prefix, n.inv, n.async.AcceptHandler()))
	mux.Handle(async.Prefix, n.async.AcceptHandler()) // other methods: a JSON 405
	mux.Handle(async.WebhookPrefix, n.async.WebhookHandler())
	mux.Handle(console.Prefix, console.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(console.Prefix, http.StatusFound))

	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	n.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	// Timeouts against slow clients. There is no WriteTimeout: a response
	// may legitimately take a function's whole timeout (up to 15 minutes),
	// and `gust logs -f` streams for as long as the user watches.
	n.srv = &http.Server{
		Handler:           fastGateway(gw, mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         tlsCfg,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	n.tls = tlsCfg != nil
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		serve := func() error { return n.srv.Serve(n.ln) }
		if n.tls {
			serve = func() error { return n.srv.ServeTLS(n.ln, "", "") }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		n.reconcileLoop(runCtx)
	}()
	n.inv.Reconcile(ctx)
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = n.URL()
	}
	if err := n.cluster.Start(advertise); err != nil {
		return nil, err
	}
	log.Info("gust is ready", "node", n.cluster.ID(), "listen", n.Addr(), "data", cfg.DataDir, "nats", n.brk.ClientURL(),
		"memory_budget_mb", cfg.MemoryBudget, "version", Version)
	return n, nil
}

// fastGateway hands invocations straight to the gateway, and everything
// else to mux. ServeMux's pattern matching is a measurable part of a warm
// call; it is skipped only for paths it would pass to the gateway
// unchanged: no empty, "." or ".." segment for it to clean up or redirect.
func fastGateway(gw, mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, gateway.Prefix) && !strings.Contains(p, "//") && !strings.Contains(p, "/.") && r.Method != http.MethodConnect {
			gw.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (n *Node) reconcileLoop(ctx context.Context) {
	changes := make(chan struct{}, 1)
	stop := n.reg.OnChange(func(string) {
		select {
		case changes <- struct{}{}:
		default:
		}
	})
	defer stop()
	t := time.NewTicker(n.cfg.ReconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changes:
		}
		n.inv.Reconcile(ctx)
	}
}

// Addr is the address the node listens on.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// URL is the node's base URL.
func (n *Node) URL() string {
	if n.tls {
		return "https://" + n.Addr()
	}
	return "http://" + n.Addr()
}

// TokenPath is where the admin token is.
func (n *Node) TokenPath() string { return n.tokenPath }

// Registry returns the node's registry.
func (n *Node) Registry() *registry.Registry { return n.reg }

// Invoker returns the node's invoker.
func (n *Node) Invoker() *invoke.Invoker { return n.inv }

// API returns the node's admin API.
func (n *Node) API() *api.API { return n.api }

// Cluster returns the node's view of the cluster.
func (n *Node) Cluster() *cluster.Cluster { return n.cluster }

// Async returns the node's async invocations.
func (n *Node) Async() *async.Async { return n.async }

// Logs returns the node's function log store.
func (n *Node) Logs() *logs.Store { return n.logs }

// Meter returns the node's meter, nil when metering is off.
func (n *Node) Meter() *meter.Meter { return n.meter }

// Stats returns the node's live per-function statistics.
func (n *Node) Stats() *stats.Stats { return n.stats }

// Tracer returns the node's tracer (a no-op without an OTLP endpoint).
func (n *Node) Tracer() *trace.Tracer { return n.tracer }

// meterCloseTimeout bounds storing the usage records buffered at Close,
// apart from Close's ctx.
const meterCloseTimeout = 5 * time.Second

// Close stops the node: it stops accepting requests, lets in-flight ones
// finish (bounded by ctx), drains instances, flushes usage records (for
// up to meterCloseTimeout more, even once ctx is done), and shuts the
// broker down.
func (n *Node) Close(ctx context.Context) {
	n.closeOnce.Do(func() {
		if n.srv != nil {
			if err := n.srv.Shutdown(ctx); err != nil {
				n.log.Warn("http shutdown", "err", err)
			}
		}
		// Before the invoker drains: the others stop forwarding here, and
		// calls they forwarded finish.
		if n.cluster != nil {
			if err := n.cluster.Close(ctx); err != nil {
				n.log.Warn("leaving the cluster", "err", err)
			}
		}
		if n.cancel != nil {
			n.cancel()
		}
		n.wg.Wait()
		if n.async != nil {
			_ = n.async.Close(ctx)
		}
		if n.inv != nil {
			_ = n.inv.Close(ctx)
		}
		// After the invoker: the last calls' spans are flushed too.
		if err := n.tracer.Shutdown(ctx); err != nil {
			n.log.Warn("closing tracer", "err", err)
		}
		if n.meter != nil {
			// A bound of its own: the steps above may have used up ctx,
			// and records the meter still buffers are lost once the
			// broker below closes.
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), meterCloseTimeout)
			if err := n.meter.Close(mctx); err != nil {
				n.log.Warn("closing meter", "err", err)
			}
			cancel()
		}
		if n.logs != nil {
			n.logs.Close()
		}
		if n.wasm != nil {
			_ = n.wasm.Close(ctx)
		}
		if n.process != nil {
			_ = n.process.Close(ctx)
		}
		if n.reg != nil {
			n.reg.Close()
		}
		if n.brk != nil {
			n.brk.Close()
		}
		if n.dataLock != nil {
			_ = n.dataLock.Close() // releases the flock
		}
	})
}

// The async workers learn from the invoker when an instance takes an
// event (so a waiting event stays queued and cancellable); keep the two
// in step.
var _ async.StartInvoker = (*invoke.Invoker)(nil)
