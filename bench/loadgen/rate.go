package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
)

// RateResult is the output of the rate mode.
type RateResult struct {
	Mode        string    `json:"mode"`
	URL         string    `json:"url"`
	Rate        float64   `json:"rate"`
	DurationS   float64   `json:"duration_s"`
	Sent        int       `json:"sent"`
	OK          int       `json:"ok"`
	Non2xx      int       `json:"non2xx"`
	Errors      int       `json:"errors"`
	Overflow    int       `json:"overflow"` // not sent: -max-inflight requests were already waiting
	AchievedRPS float64   `json:"achieved_rps"`
	Latency     Latencies `json:"latency"`  // from the intended send time to the end of the body
	SendLag     Latencies `json:"send_lag"` // how late the generator started each request
}

// maxSamples bounds what one run keeps in memory.
const maxSamples = 5_000_000

func runRate(args []string) (any, error) {
	fs := flag.NewFlagSet("rate", flag.ContinueOnError)
	u := fs.String("url", "", "URL to GET")
	rate := fs.Float64("rate", 1000, "requests per second")
	dur := fs.Duration("duration", 10*time.Second, "measured duration")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up at the same rate")
	conns := fs.Int("conns", 64, "most connections (requests beyond them wait for one, and that wait counts)")
	maxInflight := fs.Int("max-inflight", 2000, "most requests in flight; beyond it a request is counted as overflow, not sent")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of one request")
	if err := parse(fs, args, u); err != nil {
		return nil, err
	}
	if *rate <= 0 || *rate*dur.Seconds() > maxSamples || *rate*warm.Seconds() > maxSamples {
		return nil, fmt.Errorf("-rate times -duration must be between 1 and %d requests", maxSamples)
	}
	c := newClient(*conns, *timeout)
	if *warm > 0 {
		openLoop(c, *u, *rate, *warm, *maxInflight)
	}
	r := openLoop(c, *u, *rate, *dur, *maxInflight)
	fmt.Fprintf(os.Stderr, "rate %.0f/s for %s: %d sent, %d ok, %d non-2xx, %d errors, %d overflow; latency p50 %.0fµs p99 %.0fµs p99.9 %.0fµs max %.0fµs; send lag p99 %.0fµs\n",
		r.Rate, dur, r.Sent, r.OK, r.Non2xx, r.Errors, r.Overflow, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max, r.SendLag.P99)
	return r, nil
}

// openLoop sends GET u at a fixed rate for dur, whatever the answers take:
// the i-th request is due at start + i/rate, and its latency counts from
// then, so a slow server is charged for the requests it delayed (no
// coordinated omission).
func openLoop(c *http.Client, u string, rate float64, dur time.Duration, maxInflight int) RateResult {
	n := int(rate * dur.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, n)
	lag := make([]time.Duration, n)
	codes := make([]int, n) // 0: not sent or failed
	sem := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	res := RateResult{Mode: "rate", URL: u, Rate: rate, DurationS: dur.Seconds()}
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case sem <- struct{}{}:
		default:
			res.Overflow++
			codes[i] = -1
			continue
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			lag[i] = time.Since(due)
			code, err := get(ctx, c, u)
			lat[i] = time.Since(due)
			if err != nil {
				codes[i] = 0
				return
			}
			codes[i] = code
		}(i, due)
	}
	wg.Wait()
	elapsed := time.Since(start)
	ok := make([]time.Duration, 0, n)
	lags := make([]time.Duration, 0, n)
	for i, code := range codes {
		switch {
		case code == -1:
			continue
		case code == 0:
			res.Errors++
		case code >= 200 && code < 300:
			res.OK++
			ok = append(ok, lat[i])
		default:
			res.Non2xx++
		}
		res.Sent++
		lags = append(lags, lag[i])
	}
	res.AchievedRPS = float64(res.OK) / elapsed.Seconds()
	res.Latency = summarize(ok)
	res.SendLag = summarize(lags)
	return res
}
