package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/node"
)

func newServeCmd() *cobra.Command {
	var (
		cfg       node.Config
		logFormat string
		logLevel  string
		metering  bool
		fsync     string
		payload   = sizeFlag(node.DefaultMaxPayload)
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a gust node: gateway, admin API, scheduler and an embedded NATS JetStream",
		Long: `Run a gust node. With no --nats it starts an embedded NATS JetStream server
whose file store lives under --data, so it needs no other process.
On first start it writes an admin token to DATA/admin.token (mode 0600).

With --nats naming the servers of a NATS JetStream cluster, several nodes
act as one: they share functions, tokens and secrets, forward calls to each
other when full, and list each other in gust nodes. Any node's admin token
works on every node. Give every node the first node's DATA/master.key (or
the same GUST_MASTER_KEY) before it first starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			switch fsync {
			case "always":
				cfg.SyncAlways = true
			case "interval":
				// --sync-always, the older spelling, still turns it on.
			default:
				return fmt.Errorf("invalid --fsync %q: want always or interval", fsync)
			}
			if cmd.Flags().Changed("max-payload") {
				if cfg.NATSURL != "" {
					return fmt.Errorf("--max-payload sets the embedded NATS server's max_payload; with --nats, set max_payload in the configuration of those NATS servers instead (gust uses what they allow)")
				}
				if err := node.CheckMaxPayload("--max-payload", int64(payload)); err != nil {
					return err
				}
			}
			if cfg.NATSURL == "" {
				cfg.MaxPayload = int64(payload)
			}
			slog.SetDefault(log)
			node.TuneGC()
			cfg.Logger = log
			cfg.Metering = &metering
			cfg.MasterKey = os.Getenv("GUST_MASTER_KEY")
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			n, err := node.Start(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "gust %s listening on %s\nadmin token: %s\n", node.Version, n.URL(), n.TokenPath())
			<-ctx.Done()
			log.Info("shutting down")
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n.Close(shutdownCtx)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "gust-data", "data directory (NATS store, compiled-module cache, admin token)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	f.StringVar(&cfg.NATSURL, "nats", "", "use this external NATS JetStream (comma-separated URLs) instead of the embedded one")
	f.StringVar(&fsync, "fsync", "interval", "when the embedded NATS fsyncs: always (every write before it is acknowledged: survives a power loss) or interval (every 2 minutes: survives a process crash)")
	f.BoolVar(&cfg.SyncAlways, "sync-always", false, "same as --fsync always")
	_ = f.MarkDeprecated("sync-always", "use --fsync always")
	f.Var(&payload, "max-payload", "largest NATS message of the embedded server (its max_payload): an async event (body, headers and metadata) must fit in one; 1MB to 64MB, in bytes or with KB or MB (1024-based); with --nats set max_payload on those servers instead")
	f.IntVar(&cfg.Replicas, "replicas", 0, "replicas of every stream, KV bucket and object store (default: 3 when --nats names a cluster of 3 or more servers, else 1)")
	f.StringVar(&cfg.NodeID, "node-id", "", "this node's id in the cluster (default: host name and random digits)")
	f.StringVar(&cfg.Advertise, "advertise", "", "base URL other nodes and gust nodes show for this node (default: the --listen URL)")
	f.IntVar(&cfg.MemoryBudget, "memory-budget", node.DefaultMemoryBudget(), "MB of memory for function instances on this node")
	f.Int64Var(&cfg.MaxCodeBytes, "max-code-bytes", 64<<20, "largest code artifact accepted at deploy, in bytes")
	f.BoolVar(&metering, "metering", true, "record usage and Prometheus metrics for every invocation")
	f.BoolVar(&cfg.CallbackAllowPrivate, "callback-allow-private", false, "let async callbacks (X-Gust-Callback-Url) reach loopback, private and link-local addresses (off: public addresses only, against request forgery into your network)")
	cfg.PricePerGBSecond, cfg.PricePerMillionRequests = 0.0000166667, 0.20
	f.Var(dollarsFlag{&cfg.PricePerGBSecond}, "price-gb-second", "price per GB-second for usage cost estimates, in dollars")
	f.Var(dollarsFlag{&cfg.PricePerMillionRequests}, "price-million-requests", "price per million requests for usage cost estimates, in dollars")
	f.StringVar(&cfg.MasterKeyFile, "master-key-file", "", "keyring file of the secrets' master key (default DATA/master.key; env GUST_MASTER_KEY overrides)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (with --tls-key)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", false, "serve HTTPS with a self-signed certificate kept in DATA/tls (clients: --tls-ca DATA/tls/cert.pem)")
	f.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", "", "export traces over OTLP/HTTP to this URL (http://HOST:4318; /v1/traces is added when no path is given); empty: tracing off")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("invalid --log-format %q: want text or json", format)
	}
}

// sizeFlag is a byte count given as digits with an optional KB or MB
// (also K, KiB, M, MiB; 1024-based, as nats-server reads its config).
type sizeFlag int64

func (s *sizeFlag) String() string {
	switch n := int64(*s); {
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KB"
	default:
		return strconv.FormatInt(n, 10)
	}
}

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func (s *sizeFlag) Type() string { return "SIZE" }

// dollarsFlag is a price flag: its default shows in fixed decimals
// ("$0.0000166667", not pflag's "1.66667e-05"), and a leading "$" is
// accepted.
type dollarsFlag struct{ p *float64 }

func (d dollarsFlag) String() string {
	if d.p == nil {
		return ""
	}
	return dollars(*d.p)
}

func (d dollarsFlag) Set(v string) error {
	f, err := strconv.ParseFloat(strings.TrimPrefix(strings.TrimSpace(v), "$"), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) {
		return fmt.Errorf("invalid price %q: want dollars such as 0.0000166667", v)
	}
	*d.p = f
	return nil
}

func (d dollarsFlag) Type() string { return "USD" }

func parseSize(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	unit := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"MIB", 1 << 20}, {"MB", 1 << 20}, {"M", 1 << 20}, {"KIB", 1 << 10}, {"KB", 1 << 10}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, unit = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/unit {
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes, KB or MB, such as 8MB", v)
	}
	return n * unit, nil
}
