package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

// ColdResult is the output of the cold mode.
type ColdResult struct {
	Mode     string    `json:"mode"`
	Function string    `json:"function"`
	Samples  int       `json:"samples"`
	Rejected int       `json:"rejected"` // samples not kept: the pool did not count exactly one cold start
	Cold     Latencies `json:"cold"`     // first request with no instance
	Warm     Latencies `json:"warm"`     // the request right after it, on the instance it started
}

func runCold(args []string) (any, error) {
	fs := flag.NewFlagSet("cold", flag.ContinueOnError)
	var g gustFlags
	g.register(fs)
	samples := fs.Int("samples", 100, "cold starts to measure")
	reap := fs.Duration("reap-timeout", 10*time.Second, "longest wait for the pool to reap its instances before a sample")
	if err := parse(fs, args, &g.base); err != nil {
		return nil, err
	}
	if *samples < 1 || *samples > 10000 {
		return nil, fmt.Errorf("-samples must be 1 to 10000")
	}
	a, err := g.admin()
	if err != nil {
		return nil, err
	}
	r, err := coldStarts(context.Background(), a, g.fnURL(), *samples, *reap)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "cold %s: %d samples (%d rejected): cold p50 %.0fµs p99 %.0fµs; warm p50 %.0fµs p99 %.0fµs\n",
		g.fn, r.Samples, r.Rejected, r.Cold.P50, r.Cold.P99, r.Warm.P50, r.Warm.P99)
	return r, nil
}

// coldStarts measures cold starts through the gateway: it waits until the
// pool has reaped every instance (the function is deployed with a short
// idle timeout), times one request, which must start an instance, and then
// times a second one, which reuses it: the warm baseline of the same
// sample. A sample counts only if the pool's cold-start counter grew by
// exactly one across the pair.
func coldStarts(ctx context.Context, a *admin, u string, samples int, reap time.Duration) (ColdResult, error) {
	c := newClient(1, 10*time.Second)
	res := ColdResult{Mode: "cold", Function: a.fn}
	// One request opens the keep-alive connection, so no sample pays for
	// a TCP handshake.
	if _, err := get(ctx, c, u); err != nil {
		return res, err
	}
	var cold, warm []time.Duration
	for range samples {
		before, err := a.waitFor(ctx, "reaping "+a.fn, 5*time.Millisecond, reap,
			func(s poolState) bool { return s.Instances() == 0 && s.Starting == 0 })
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		code, err := get(ctx, c, u)
		tc := time.Since(t0)
		if err != nil || code != 200 {
			return res, fmt.Errorf("cold request: status %d, %v", code, err)
		}
		t1 := time.Now()
		code, err = get(ctx, c, u)
		tw := time.Since(t1)
		if err != nil || code != 200 {
			return res, fmt.Errorf("warm request: status %d, %v", code, err)
		}
		after, err := a.state(ctx)
		if err != nil {
			return res, err
		}
		if after.ColdStarts != before.ColdStarts+1 {
			res.Rejected++
			continue
		}
		cold = append(cold, tc)
		warm = append(warm, tw)
	}
	res.Samples = len(cold)
	res.Cold = summarize(cold)
	res.Warm = summarize(warm)
	return res, nil
}
