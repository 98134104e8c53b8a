package main

import (
	"math"
	"slices"
	"time"
)

// Latencies are the latency percentiles of a run, in microseconds.
type Latencies struct {
	N    int     `json:"n"`
	Min  float64 `json:"min_us"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

// summarize sorts d in place and returns its percentiles (nearest rank).
// Runs are bounded, so keeping every sample is cheap and exact, which a
// bucketed histogram would not be at the tail.
func summarize(d []time.Duration) Latencies {
	if len(d) == 0 {
		return Latencies{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return Latencies{
		N:    len(d),
		Min:  us(d[0]),
		P50:  us(rank(d, 0.50)),
		P90:  us(rank(d, 0.90)),
		P99:  us(rank(d, 0.99)),
		P999: us(rank(d, 0.999)),
		Max:  us(d[len(d)-1]),
		Mean: us(sum / time.Duration(len(d))),
	}
}

func rank(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
