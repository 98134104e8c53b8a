package stats

import (
	"math"
	"time"
)

// Durations fall in fixed log-scale buckets: bucket 0 is [0, histBase),
// bucket i >= 1 is [histBase*2^((i-1)/perOctave), histBase*2^(i/perOctave)).
// Three buckets per doubling keep a quantile within about 12% of the true
// value (it is interpolated inside a bucket 26% wide), which is what a
// chart and `gust top` need, in 76 counters per second: 10µs to 266s.
const (
	histBase   = 10 * time.Microsecond
	perOctave  = 3
	octaves    = 25
	histBucket = 1 + perOctave*octaves
)

type histogram [histBucket]uint32

func bucketOf(d time.Duration) int {
	if d < histBase {
		return 0
	}
	i := 1 + int(perOctave*math.Log2(float64(d)/float64(histBase)))
	return min(i, histBucket-1)
}

// bounds returns the lower and upper edge of bucket i in nanoseconds.
func bounds(i int) (float64, float64) {
	if i == 0 {
		return 0, float64(histBase)
	}
	lo := float64(histBase) * math.Exp2(float64(i-1)/perOctave)
	return lo, lo * math.Exp2(1.0/perOctave)
}

func (h *histogram) add(d time.Duration) { h[bucketOf(d)]++ }

// wideHistogram sums many seconds without overflow.
type wideHistogram [histBucket]uint64

func (w *wideHistogram) merge(h *histogram) {
	for i, c := range h {
		w[i] += uint64(c)
	}
}

// quantile returns the q-quantile in milliseconds, interpolated inside its
// bucket; 0 for an empty histogram.
func (w *wideHistogram) quantile(q float64) float64 {
	var n uint64
	for _, c := range w {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	if rank < 1 {
		rank = 1
	}
	var cum float64
	for i, c := range w {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			// The k-th of c samples in a bucket is taken to sit at
			// (k-0.5)/c of its way up, on the log scale the buckets use:
			// a lone sample reads as the bucket's geometric middle.
			lo, hi := bounds(i)
			frac := min(max((rank-cum-0.5)/float64(c), 0), 1)
			switch i {
			case 0:
				return (lo + (hi-lo)*frac) / float64(time.Millisecond)
			case histBucket - 1:
				return lo / float64(time.Millisecond) // open-ended: at least lo
			}
			return lo * math.Pow(hi/lo, frac) / float64(time.Millisecond)
		}
		cum += float64(c)
	}
	lo, _ := bounds(histBucket - 1)
	return lo / float64(time.Millisecond)
}
