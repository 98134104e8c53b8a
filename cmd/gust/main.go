// Command gust is the single gust binary: `gust serve` runs a node, every
// other verb is a client of a node's admin API (see package client).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gustfaas/gust/process"
)

func main() {
	// Sandboxed process instances start as this binary re-executed in a
	// hidden mode; it must run before anything else does.
	process.RunSandboxHelperIfRequested()
	// Ctrl-C cancels a client call in flight instead of killing the
	// process mid-write; serve installs its own handling on top.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, errorText(err))
		os.Exit(1)
	}
}
