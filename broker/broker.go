package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for Config's zero fields.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadyTimeout   = 10 * time.Second
	DefaultDrainTimeout   = 5 * time.Second

	// maxReconnectDelay caps the backoff between reconnect attempts, so a
	// node that lost its NATS finds it again within seconds of its return.
	maxReconnectDelay = 5 * time.Second
)

// Config says where gust's JetStream is.
type Config struct {
	// DataDir holds the embedded server's file store (DataDir/nats). It is
	// required when URL is empty and unused otherwise.
	DataDir string
	// URL of an external NATS with JetStream; comma-separated URLs of one
	// cluster are allowed. Empty runs nats-server embedded.
	URL string
	// SyncAlways makes the embedded server fsync every write before it is
	// acknowledged. Without it NATS fsyncs every two minutes, so a power cut
	// can lose recent acknowledged writes (a crash of the process cannot).
	SyncAlways bool
	// Listen is a host:port for the embedded server to also accept network
	// clients on (port 0 picks a free one), for the nats CLI or tests. Empty
	// means no listener: anything that can reach a port could read and
	// write gust's state, and gust itself connects in-process.
	Listen string
	// MaxPayload is the embedded server's max_payload: the largest message
	// in bytes (the async body limit and cluster forwarding derive from
	// it). Zero keeps nats-server's default of 1 MB. An external server's
	// own setting applies, so it must be zero with URL.
	MaxPayload int32
	// Replicas is the replica count of every stream, KV bucket and object
	// store gust creates: 1 or, on a JetStream cluster, 3 or 5. Zero asks the
	// servers: 3 when the NATS cluster gust connects to has at least three
	// servers, else 1 (always 1 embedded).
	Replicas int
	// ConnectTimeout bounds dialing an external NATS and checking that it
	// has JetStream. Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ReadyTimeout bounds the embedded server's start. Default
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logger receives connection events and the embedded server's warnings
	// and errors. Nil means slog.Default().
	Logger *slog.Logger
}

// Broker is a connection to gust's JetStream, and the embedded server behind
// it if there is one. It is safe for concurrent use.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	srv    *server.Server // nil when connected to an external NATS
	nc     *nats.Conn
	js     jetstream.JetStream
	closed chan struct{} // closed by the connection's ClosedHandler

	closeOnce sync.Once
}

// Start runs an embedded nats-server with JetStream in cfg.DataDir, or
// connects to the NATS at cfg.URL, and returns once JetStream answers.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("broker: replicas %d: want 1 to 5", cfg.Replicas)
	}
	if cfg.MaxPayload != 0 && cfg.URL != "" {
		return nil, errors.New("broker: a max payload applies to the embedded NATS only; set max_payload on the external servers instead")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	b := &Broker{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "broker"),
		closed: make(chan struct{}),
	}
	var err error
	if cfg.URL == "" {
		err = b.startEmbedded()
	} else {
		err = b.connectExternal()
	}
	if err != nil {
		return nil, err
	}
	if err := b.checkJetStream(ctx); err != nil {
		b.Close()
		return nil, err
	}
	if b.cfg.Replicas == 0 {
		b.cfg.Replicas = DefaultReplicas(b.ClusterSize())
		b.log.Info("replicas chosen from the NATS cluster's size", "servers", b.ClusterSize(), "replicas", b.cfg.Replicas)
	}
	return b, nil
}

// DefaultReplicas is the replica count for a NATS cluster of servers
// servers: 3 from three servers on (a majority survives one server's loss,
// and more replicas only slow every write), else 1, since JetStream refuses
// more replicas than servers.
func DefaultReplicas(servers int) int {
	if servers >= 3 {
		return 3
	}
	return 1
}

// ClusterSize is how many NATS servers the connection knows of: the one it
// is connected to and those the cluster advertised to it (the servers'
// connect_urls gossip). It is 1 embedded or for a lone server.
func (b *Broker) ClusterSize() int {
	if b.srv != nil || b.nc == nil {
		return 1
	}
	seen := map[string]bool{}
	for _, u := range b.nc.Servers() {
		seen[hostPort(u)] = true
	}
	if u := b.nc.ConnectedUrl(); u != "" {
		seen[hostPort(u)] = true
	}
	return max(1, len(seen))
}

// hostPort reduces a NATS URL to host:port, so the same server named by a
// configured URL and by gossip is counted once.
func hostPort(u string) string {
	if _, rest, ok := strings.Cut(u, "://"); ok {
		u = rest
	}
	if at := strings.LastIndex(u, "@"); at >= 0 {
		u = u[at+1:]
	}
	return strings.TrimSuffix(u, "/")
}

func (b *Broker) startEmbedded() error {
	cfg := b.cfg
	if cfg.DataDir == "" {
		return errors.New("broker: a data dir is required to run NATS embedded")
	}
	if cfg.Replicas == 0 {
		b.cfg.Replicas = 1
	} else if cfg.Replicas != 1 {
		return fmt.Errorf("broker: replicas %d need a JetStream cluster; the embedded server is a single node (use an external NATS)", cfg.Replicas)
	}
	storeDir := filepath.Join(cfg.DataDir, "nats")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return fmt.Errorf("broker: create store dir: %w", err)
	}
	opts := &server.Options{
		ServerName: "gust",
		JetStream:  true,
		StoreDir:   storeDir,
		SyncAlways: cfg.SyncAlways,
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true, // signals belong to gust, not to a library inside it
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return fmt.Errorf("broker: listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("broker: listen address %q: bad port", cfg.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("broker: configure embedded NATS: %w", err)
	}
	srv.SetLoggerV2(&serverLogger{log: b.log.With("nats", "server")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("broker: embedded NATS in %s not ready after %s", storeDir, cfg.ReadyTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("broker: embedded NATS started but JetStream did not (store dir %s; see the logged server errors)", storeDir)
	}
	b.srv = srv
	// The URL is a placeholder: InProcessServer makes the client use a pipe
	// into srv, which needs no port and no permission.
	nc, err := nats.Connect(nats.DefaultURL, b.connOptions(nats.InProcessServer(srv))...)
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("broker: connect to embedded NATS: %w", err)
	}
	b.nc = nc
	b.log.Info("embedded NATS started", "store", storeDir, "syncAlways", cfg.SyncAlways, "maxPayload", nc.MaxPayload(), "clientURL", b.ClientURL())
	return nil
}

func (b *Broker) connectExternal() error {
	nc, err := nats.Connect(b.cfg.URL, b.connOptions(nats.Timeout(b.cfg.ConnectTimeout))...)
	if err != nil {
		return fmt.Errorf("broker: connect to NATS at %s: %w", redactURL(b.cfg.URL), err)
	}
	b.nc = nc
	b.log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName())
	return nil
}

func (b *Broker) connOptions(extra ...nats.Option) []nats.Option {
	opts := []nats.Option{
		nats.Name("gust"),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DrainTimeout(DefaultDrainTimeout),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.log.Error("NATS async error", "subject", subject, "err", err)
		}),
	}
	return append(opts, extra...)
}

// reconnectDelay backs off exponentially from 100ms to maxReconnectDelay.
func reconnectDelay(attempts int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < attempts && d < maxReconnectDelay; i++ {
		d *= 2
	}
	return min(d, maxReconnectDelay)
}

func (b *Broker) checkJetStream(ctx context.Context) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("broker: JetStream context: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		where := "embedded NATS"
		if b.srv == nil {
			where = "NATS at " + redactURL(b.cfg.URL)
		}
		switch {
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled):
			return fmt.Errorf("broker: %s has no JetStream; run nats-server with -js (or a jetstream block in its config): %w", where, err)
		case errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
			return fmt.Errorf("broker: %s has JetStream, but not for this account; enable it for the account gust connects as: %w", where, err)
		default:
			return fmt.Errorf("broker: check JetStream on %s: %w", where, err)
		}
	}
	b.js = js
	return nil
}

// Conn returns the NATS connection, for plain subjects (triggers, logs).
func (b *Broker) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream API on the connection.
func (b *Broker) JetStream() jetstream.JetStream { return b.js }

// Replicas is the replica count for every bucket and stream gust creates.
func (b *Broker) Replicas() int { return b.cfg.Replicas }

// Embedded reports whether the server runs inside this process.
func (b *Broker) Embedded() bool { return b.srv != nil }

// ClientURL returns a URL other NATS clients can connect to: the embedded
// server's listener, "" if it has none, or the configured external URL.
func (b *Broker) ClientURL() string {
	if b.srv == nil {
		return b.cfg.URL
	}
	if b.cfg.Listen == "" {
		return ""
	}
	return b.srv.ClientURL()
}

// Close drains the connection, so published messages and acks in flight are
// flushed, then stops the embedded server and waits for it to finish
// writing. It is safe to call more than once.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		if b.nc != nil {
			if err := b.nc.Drain(); err != nil {
				b.nc.Close()
			}
			select {
			case <-b.closed:
			case <-time.After(DefaultDrainTimeout + time.Second):
				b.log.Warn("NATS drain did not finish; closing")
				b.nc.Close()
			}
		}
		if b.srv != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
			b.log.Info("embedded NATS stopped")
		}
	})
}

// redactURL hides passwords and tokens in (comma-separated) NATS URLs so
// they do not reach logs or error messages.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			continue
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			parts[i] = scheme + "://[redacted]@" + rest[at+1:]
		} else {
			parts[i] = p
		}
	}
	return strings.Join(parts, ",")
}

// serverLogger sends nats-server's log to slog. Its notices (the start-up
// banner, mostly) go to debug so gust's own log stays readable.
type serverLogger struct{ log *slog.Logger }

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(string, ...any)           {}
