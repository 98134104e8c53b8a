package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// StatsPoint is the live statistics of one function over one step (or, in
// a summary, over the whole window).
type StatsPoint struct {
	T           time.Time `json:"t"`
	Invocations int64     `json:"invocations"`
	Errors      int64     `json:"errors"`
	Throttles   int64     `json:"throttles"`
	ColdStarts  int64     `json:"coldStarts"`
	P50Ms       float64   `json:"p50ms"`
	P99Ms       float64   `json:"p99ms"`
	RPS         float64   `json:"rps"`
}

// StatsSeries is a function's statistics over time, oldest point first.
type StatsSeries struct {
	Function string       `json:"function"`
	Window   string       `json:"window"`
	Step     string       `json:"step"`
	Points   []StatsPoint `json:"points"`
}

// FunctionSummary is one function's statistics over a summary's window.
type FunctionSummary struct {
	Function string `json:"function"`
	StatsPoint
}

// StatsSummary is the statistics of every function with traffic in the
// window, sorted by name.
type StatsSummary struct {
	Window    string            `json:"window"`
	Time      time.Time         `json:"time"`
	Functions []FunctionSummary `json:"functions"`
}

// FunctionStats returns the live statistics of function name over the last
// window in points of step (zero values leave the choice to the server:
// 15m, and a sixtieth of the window). The node keeps an hour. Errors:
// EINVALID.
func (c *Client) FunctionStats(ctx context.Context, name string, window, step time.Duration) (*StatsSeries, error) {
	u, err := c.url("v1", "functions", name, "stats")
	if err != nil {
		return nil, err
	}
	v := url.Values{}
	if window > 0 {
		v.Set("window", window.String())
	}
	if step > 0 {
		v.Set("step", step.String())
	}
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	var out StatsSeries
	if err := c.doJSON(ctx, http.MethodGet, u, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Stats returns the live statistics of every function with traffic in the
// last window (zero: the server's default, 1m), for `gust top`. Errors:
// EINVALID.
func (c *Client) Stats(ctx context.Context, window time.Duration) (*StatsSummary, error) {
	u, err := c.url("v1", "stats")
	if err != nil {
		return nil, err
	}
	if window > 0 {
		u += "?" + url.Values{"window": {window.String()}}.Encode()
	}
	var out StatsSummary
	if err := c.doJSON(ctx, http.MethodGet, u, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
