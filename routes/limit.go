package routes

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gustfaas/gust"
)

// maxBuckets bounds the callers one route tracks. Past it, idle callers
// (whose bucket is full again, so forgetting them changes nothing) are
// dropped; if all are busy, new callers share one overflow bucket, which
// limits a flood of fresh addresses instead of resetting everyone's.
const maxBuckets = 10000

type limiter struct {
	rps      float64
	burst    int
	mu       sync.Mutex
	buckets  map[string]*rate.Limiter
	overflow *rate.Limiter
}

func newLimiter(rl gust.RateLimit) *limiter {
	burst := rl.Burst
	if burst == 0 {
		burst = int(math.Ceil(rl.RPS))
	}
	return &limiter{
		rps: rl.RPS, burst: burst,
		buckets:  map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(rl.RPS), burst),
	}
}

// allow takes a token from key's bucket at now. When none is left it
// reports how long until one is.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		if len(l.buckets) >= maxBuckets {
			b = l.overflow
		} else {
			b = rate.NewLimiter(rate.Limit(l.rps), l.burst)
			l.buckets[key] = b
		}
	}
	l.mu.Unlock()
	res := b.ReserveN(now, 1)
	if !res.OK() {
		return time.Second, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// sweep forgets the buckets that are full. Called with l.mu held.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}
