package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

// BurstResult is the output of the burst mode.
type BurstResult struct {
	Mode        string             `json:"mode"`
	Function    string             `json:"function"`
	Clients     int                `json:"clients"`
	Target      int                `json:"target"`
	Reached     bool               `json:"reached"`
	Instances   int                `json:"instances"`   // started instances when the burst ended
	MaxStarting int                `json:"maxStarting"` // most instances seen starting at once
	TimeToMS    map[string]float64 `json:"time_to_ms"`  // instances -> ms from the burst's start until that many had started
	ColdStarts  int64              `json:"coldStarts"`
	OneCold     ColdResult         `json:"one_cold"` // cold starts of the same function, alone, before the burst
	Load        ClosedResult       `json:"load"`     // what the clients saw during the burst
}

func runBurst(args []string) (any, error) {
	fs := flag.NewFlagSet("burst", flag.ContinueOnError)
	var g gustFlags
	g.register(fs)
	clients := fs.Int("clients", 200, "concurrent closed-loop clients")
	target := fs.Int("instances", 100, "stop once this many instances have started")
	timeout := fs.Duration("timeout", 20*time.Second, "longest burst")
	poll := fs.Duration("poll", 5*time.Millisecond, "how often to read /v1/status during the burst")
	coldSamples := fs.Int("cold-samples", 5, "lone cold starts measured first, as the baseline")
	coldQuery := fs.String("cold-query", "ms=0", "query of the lone cold starts")
	if err := parse(fs, args, &g.base); err != nil {
		return nil, err
	}
	if *clients < 1 || *clients > 10000 || *target < 1 {
		return nil, fmt.Errorf("-clients must be 1 to 10000 and -instances at least 1")
	}
	a, err := g.admin()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	res := BurstResult{Mode: "burst", Function: g.fn, Clients: *clients, Target: *target, TimeToMS: map[string]float64{}}

	coldURL := (&gustFlags{base: g.base, fn: g.fn, query: *coldQuery}).fnURL()
	if res.OneCold, err = coldStarts(ctx, a, coldURL, *coldSamples, 10*time.Second); err != nil {
		return nil, fmt.Errorf("baseline cold starts: %w", err)
	}
	if _, err := a.waitFor(ctx, "reaping "+g.fn, 5*time.Millisecond, 10*time.Second,
		func(s poolState) bool { return s.Instances() == 0 && s.Starting == 0 }); err != nil {
		return nil, err
	}
	before, err := a.state(ctx)
	if err != nil {
		return nil, err
	}

	milestones := []int{1, *target / 10, *target / 4, *target / 2, *target * 3 / 4, *target * 9 / 10, *target}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan ClosedResult, 1)
	start := time.Now()
	go func() {
		loadDone <- closedLoop(loadCtx, newClient(*clients, 30*time.Second), g.fnURL(), *clients, *timeout, maxSamples)
	}()
	var last poolState
	for time.Since(start) < *timeout {
		s, err := a.state(ctx)
		if err != nil {
			stopLoad()
			<-loadDone
			return nil, err
		}
		at := float64(time.Since(start)) / 1e6
		last = s
		res.MaxStarting = max(res.MaxStarting, s.Starting)
		for _, m := range milestones {
			k := strconv.Itoa(m)
			if _, seen := res.TimeToMS[k]; !seen && m > 0 && s.Instances() >= m {
				res.TimeToMS[k] = at
			}
		}
		if s.Instances() >= *target {
			res.Reached = true
			break
		}
		time.Sleep(*poll)
	}
	stopLoad()
	res.Load = <-loadDone
	res.Instances = last.Instances()
	res.ColdStarts = last.ColdStarts - before.ColdStarts
	fmt.Fprintf(os.Stderr, "burst %s: %d clients; %d instances started (target %d, reached %v); time to instances (ms): %v; lone cold start p50 %.0fµs\n",
		g.fn, *clients, res.Instances, *target, res.Reached, res.TimeToMS, res.OneCold.Cold.P50)
	return res, nil
}
