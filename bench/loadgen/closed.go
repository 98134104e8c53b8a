package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ClosedResult is the output of the closed mode.
type ClosedResult struct {
	Mode      string         `json:"mode"`
	URL       string         `json:"url"`
	Clients   int            `json:"clients"`
	DurationS float64        `json:"duration_s"`
	Requests  int            `json:"requests"`
	Status    map[string]int `json:"status"` // by HTTP status; "error" for transport errors
	RPS       float64        `json:"rps"`
	OKRPS     float64        `json:"ok_rps"`
	Share429  float64        `json:"share_429"`
	Latency   Latencies      `json:"latency"`    // of every answered request
	LatencyOK Latencies      `json:"latency_ok"` // of 2xx answers only
}

func runClosed(args []string) (any, error) {
	fs := flag.NewFlagSet("closed", flag.ContinueOnError)
	u := fs.String("url", "", "URL to GET")
	clients := fs.Int("clients", 1, "concurrent clients, each sending its next request when the last is answered")
	dur := fs.Duration("duration", 5*time.Second, "how long to run")
	maxReq := fs.Int("requests", 1_000_000, "stop after this many requests in all")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of one request")
	if err := parse(fs, args, u); err != nil {
		return nil, err
	}
	if *clients < 1 || *clients > 10000 || *maxReq < 1 || *maxReq > maxSamples {
		return nil, fmt.Errorf("-clients must be 1 to 10000 and -requests 1 to %d", maxSamples)
	}
	r := closedLoop(context.Background(), newClient(*clients, *timeout), *u, *clients, *dur, *maxReq)
	fmt.Fprintf(os.Stderr, "closed %d clients for %s: %d requests, %.0f/s, status %v, 429 share %.4f; p50 %.0fµs p99 %.0fµs\n",
		r.Clients, dur, r.Requests, r.RPS, r.Status, r.Share429, r.Latency.P50, r.Latency.P99)
	return r, nil
}

type sample struct {
	lat  time.Duration
	code int // 0 for a transport error
}

// closedLoop runs clients that each send a request as soon as their last
// one is answered, until dur has passed, maxReq requests were sent or ctx
// is done.
func closedLoop(ctx context.Context, c *http.Client, u string, clients int, dur time.Duration, maxReq int) ClosedResult {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var sent atomic.Int64
	per := make([][]sample, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && sent.Add(1) <= int64(maxReq) {
				t0 := time.Now()
				code, err := get(ctx, c, u)
				if ctx.Err() != nil {
					return // cut off by the end of the run: not an answer
				}
				if err != nil {
					code = 0
				}
				per[i] = append(per[i], sample{time.Since(t0), code})
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := ClosedResult{Mode: "closed", URL: u, Clients: clients, DurationS: elapsed.Seconds(), Status: map[string]int{}}
	var all, ok []time.Duration
	n429 := 0
	for _, ss := range per {
		for _, s := range ss {
			res.Requests++
			key := "error"
			if s.code != 0 {
				key = strconv.Itoa(s.code)
				all = append(all, s.lat)
			}
			res.Status[key]++
			if s.code >= 200 && s.code < 300 {
				ok = append(ok, s.lat)
			}
			if s.code == 429 {
				n429++
			}
		}
	}
	res.RPS = float64(res.Requests) / elapsed.Seconds()
	res.OKRPS = float64(len(ok)) / elapsed.Seconds()
	if res.Requests > 0 {
		res.Share429 = float64(n429) / float64(res.Requests)
	}
	res.Latency = summarize(all)
	res.LatencyOK = summarize(ok)
	return res
}
