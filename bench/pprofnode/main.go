// Command pprofnode runs a gust node in process, as `gust serve` does, with
// net/http/pprof served on a second loopback address, so a benchmark can
// take a CPU or heap profile of the node under load:
//
//	go run ./bench/pprofnode -data /tmp/d -listen 127.0.0.1:18080 -pprof 127.0.0.1:18090
//	curl -o cpu.prof 'http://127.0.0.1:18090/debug/pprof/profile?seconds=10'
//
// It is a measuring tool, not a way to run gust: the product binary has no
// profiling endpoint.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gustfaas/gust/node"
)

func main() {
	var cfg node.Config
	flag.StringVar(&cfg.DataDir, "data", "gust-data", "data directory")
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:18080", "address of the node")
	pprofAddr := flag.String("pprof", "127.0.0.1:18090", "address of /debug/pprof (loopback only)")
	metering := flag.Bool("metering", true, "record usage and metrics, as gust serve --metering")
	flag.Parse()
	if err := run(cfg, *pprofAddr, *metering); err != nil {
		fmt.Fprintln(os.Stderr, "pprofnode:", err)
		os.Exit(1)
	}
}

func run(cfg node.Config, pprofAddr string, metering bool) error {
	for _, a := range []string{cfg.Listen, pprofAddr} {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("invalid address %q: %w", a, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("invalid address %q: loopback only", a)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Logger = log
	cfg.Metering = &metering
	node.TuneGC() // as gust serve does
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(shutdownCtx)
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", pprofAddr)
	if err != nil {
		return fmt.Errorf("listen for pprof: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "err", err)
		}
	}()
	defer srv.Close()
	fmt.Fprintf(os.Stderr, "gust node on %s, pprof on http://%s/debug/pprof/, admin token %s\n", n.URL(), pprofAddr, n.TokenPath())
	<-ctx.Done()
	return nil
}
