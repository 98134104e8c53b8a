package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
)

// ANSI sequences of the full-screen view: home and clear, hide and show
// the cursor.
const (
	ansiClear      = "\x1b[H\x1b[2J"
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
)

func newTopCmd(a *app) *cobra.Command {
	var once bool
	var interval, window time.Duration
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Watch functions live: requests per second, p99, errors, throttles, instances",
		Long: `top shows every function with traffic or instances on the node, refreshed
every --interval: requests per second and p50/p99 duration over the last
--window, errors, throttles and cold starts in it, and instances (idle,
busy, starting) with callers waiting for one. Ctrl-C quits.`,
		Example: `  gust top
  gust top --window 1m
  gust top --once`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval < 100*time.Millisecond {
				return fmt.Errorf("invalid --interval %s: want at least 100ms", interval)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if once {
				f, err := fetchTop(cmd.Context(), c, window)
				if err != nil {
					return err
				}
				renderTop(out, f, a.now())
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runTop(ctx, c, out, window, interval, a.now)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&once, "once", false, "print one frame and exit (no screen control)")
	f.DurationVar(&interval, "interval", time.Second, "time between refreshes")
	f.DurationVar(&window, "window", 10*time.Second, "rates and percentiles over this much recent time (1s to 1h)")
	return cmd
}

// runTop redraws until ctx ends. A failed refresh is shown in the frame
// and retried, so top survives a restarting server.
func runTop(ctx context.Context, c *client.Client, out io.Writer, window, interval time.Duration, now func() time.Time) error {
	fmt.Fprint(out, ansiHideCursor)
	defer fmt.Fprint(out, ansiShowCursor)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fctx, cancel := context.WithTimeout(ctx, max(interval, 2*time.Second))
		f, err := fetchTop(fctx, c, window)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if gust.ErrorCode(err) == gust.EUNAUTHORIZED || gust.ErrorCode(err) == gust.EINVALID {
			return err
		}
		if err != nil {
			f = &topFrame{url: c.BaseURL(), window: window, err: err}
		}
		var b strings.Builder
		b.WriteString(ansiClear)
		renderTop(&b, f, now())
		fmt.Fprint(out, b.String())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// topFrame is what one refresh shows.
type topFrame struct {
	url      string
	window   time.Duration
	memUsed  int
	memTotal int
	rows     []topRow
	err      error
}

type topRow struct {
	function                       string
	rps, p50, p99                  float64
	invocations, errors, throttles int64
	cold                           int64
	idle, busy, starting, waiting  int
}

// poolStatus is the part of GET /v1/status that top reads.
type poolStatus struct {
	MemoryBudgetMB int              `json:"memoryBudgetMB"`
	MemoryUsedMB   int              `json:"memoryUsedMB"`
	Pools          []gust.PoolStats `json:"pools"`
}

func fetchTop(ctx context.Context, c *client.Client, window time.Duration) (*topFrame, error) {
	st, err := c.Stats(ctx, window)
	if err != nil {
		return nil, err
	}
	raw, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	var ps poolStatus
	if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, fmt.Errorf("decode status: %w", err)
	}
	f := &topFrame{url: c.BaseURL(), window: window, memUsed: ps.MemoryUsedMB, memTotal: ps.MemoryBudgetMB}
	rows := map[string]*topRow{}
	row := func(fn string) *topRow {
		r, ok := rows[fn]
		if !ok {
			r = &topRow{function: fn}
			rows[fn] = r
		}
		return r
	}
	for _, s := range st.Functions {
		r := row(s.Function)
		r.rps, r.p50, r.p99 = s.RPS, s.P50Ms, s.P99Ms
		r.invocations, r.errors, r.throttles, r.cold = s.Invocations, s.Errors, s.Throttles, s.ColdStarts
	}
	for _, p := range ps.Pools {
		r := row(p.Function)
		r.idle += p.Idle
		r.busy += p.Busy
		r.starting += p.Starting
		r.waiting += p.Waiting
	}
	for _, r := range rows {
		f.rows = append(f.rows, *r)
	}
	// Busiest first; a stable order among the idle so rows do not jump.
	sort.Slice(f.rows, func(i, j int) bool {
		a, b := f.rows[i], f.rows[j]
		if a.rps != b.rps {
			return a.rps > b.rps
		}
		if a.throttles != b.throttles {
			return a.throttles > b.throttles
		}
		return a.function < b.function
	})
	return f, nil
}

func renderTop(w io.Writer, f *topFrame, now time.Time) {
	head := fmt.Sprintf("gust top · %s · %s · window %s", f.url, now.Local().Format("15:04:05"), f.window)
	if f.memTotal > 0 {
		head += fmt.Sprintf(" · memory %d/%d MB", f.memUsed, f.memTotal)
	}
	fmt.Fprintln(w, head)
	if f.err != nil {
		fmt.Fprintf(w, "\n%s (retrying)\n", errorText(f.err))
		return
	}
	fmt.Fprintln(w)
	if len(f.rows) == 0 {
		fmt.Fprintln(w, "no traffic and no instances; invoke a function to see it here")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "FUNCTION\tREQ/S\tP50\tP99\tINVOCATIONS\tERRORS\tTHROTTLES\tCOLD\tINSTANCES\tBUSY\tWAITING")
	for _, r := range f.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.function, rate(r.rps),
			millis(r.p50, r.invocations), millis(r.p99, r.invocations),
			r.invocations, r.errors, r.throttles, r.cold, r.idle+r.busy+r.starting, r.busy, r.waiting)
	}
	_ = tw.Flush()
}

func rate(rps float64) string {
	if rps >= 100 {
		return fmt.Sprintf("%.0f", rps)
	}
	return fmt.Sprintf("%.2f", rps)
}

// millis renders a percentile; "-" when nothing ran to measure.
func millis(ms float64, n int64) string {
	switch {
	case n == 0:
		return "-"
	case ms < 1:
		return fmt.Sprintf("%.0fµs", ms*1000)
	case ms < 1000:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.2fs", ms/1000)
}
