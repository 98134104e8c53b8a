package stats

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust"
)

// Retention is how far back the statistics reach: one ring slot per second.
const Retention = time.Hour

const slots = int64(Retention / time.Second)

// Config configures Stats.
type Config struct {
	// Now is the clock; default time.Now. Tests pass a fake one.
	Now func() time.Time
}

// Stats is a gust.Recorder that keeps per-second statistics of the last
// hour for each function. It is safe for concurrent use.
type Stats struct {
	now func() time.Time
	// fns maps function names to their series. It is copied on write
	// (a new function is rare) so that Record reads it without a lock or
	// sync.Map's interface hashing.
	fns atomic.Pointer[map[string]*series]

	// newMu serializes creating and pruning series, the rare path.
	newMu sync.Mutex
}

// New returns an empty Stats.
func New(cfg Config) *Stats {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Stats{now: cfg.Now}
	s.fns.Store(&map[string]*series{})
	return s
}

// lookup returns the series of function, nil if it has none.
func (s *Stats) lookup(function string) *series {
	return (*s.fns.Load())[function]
}

// series is the ring of one function. slot i holds second sec where
// sec % slots == i; a slot whose sec is not the one asked for is stale.
type series struct {
	mu   sync.Mutex
	ring [slots]slot
	last int64 // latest second recorded, for pruning
}

type slot struct {
	sec         int64
	invocations uint32
	errors      uint32
	throttles   uint32
	coldStarts  uint32
	// hist is allocated the first time the slot sees a duration and then
	// reused for every later second that maps to it, so Record allocates
	// at most once per slot in a function's life, never per call.
	hist *histogram
}

// Record implements gust.Recorder. The invocation counts in the second it
// finished (Start+Duration; now if Start is unset). Throttled invocations
// did not run: they count as throttles, not invocations, as in the meter.
func (s *Stats) Record(inv *gust.Invocation) {
	if inv == nil || inv.Function == "" {
		return
	}
	var end time.Time
	if inv.Start.IsZero() {
		end = s.now()
	} else {
		end = inv.Start.Add(inv.Duration)
	}
	sec := end.Unix()
	sr := s.series(inv.Function, sec)
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sec <= sr.last-slots {
		return // older than the ring: it would overwrite newer data
	}
	sl := &sr.ring[mod(sec)]
	if sl.sec != sec {
		*sl = slot{sec: sec, hist: sl.hist}
		if sl.hist != nil {
			*sl.hist = histogram{}
		}
	}
	if sec > sr.last {
		sr.last = sec
	}
	if inv.Status == gust.StatusThrottled {
		sl.throttles++
		return
	}
	sl.invocations++
	switch inv.Status {
	case gust.StatusError, gust.StatusTimeout, gust.StatusOOM:
		sl.errors++
	}
	if inv.Cold {
		sl.coldStarts++
	}
	if sl.hist == nil {
		sl.hist = new(histogram)
	}
	sl.hist.add(inv.Duration)
}

func (s *Stats) series(function string, sec int64) *series {
	if sr := s.lookup(function); sr != nil {
		return sr
	}
	s.newMu.Lock()
	defer s.newMu.Unlock()
	if sr := s.lookup(function); sr != nil {
		return sr
	}
	// A new function is rare: the moment to drop the rings of functions
	// idle for longer than the retention (deleted ones, say), so memory
	// follows the functions in use.
	old := *s.fns.Load()
	fns := make(map[string]*series, len(old)+1)
	for k, sr := range old {
		sr.mu.Lock()
		idle := sr.last <= sec-slots
		sr.mu.Unlock()
		if !idle {
			fns[k] = sr
		}
	}
	sr := &series{last: sec}
	fns[function] = sr
	s.fns.Store(&fns)
	return sr
}

func mod(sec int64) int64 {
	m := sec % slots
	if m < 0 {
		m += slots
	}
	return m
}

// Point is the statistics of one step of a series, starting at T.
type Point struct {
	T           time.Time `json:"t"`
	Invocations int64     `json:"invocations"`
	Errors      int64     `json:"errors"`
	Throttles   int64     `json:"throttles"`
	ColdStarts  int64     `json:"coldStarts"`
	P50Ms       float64   `json:"p50ms"`
	P99Ms       float64   `json:"p99ms"`
	RPS         float64   `json:"rps"` // invocations per second over the step's elapsed time
}

// Limits of a query.
const (
	MinStep   = time.Second
	MaxPoints = 3600
)

// CheckRange validates a window and step: whole seconds, 1s <= step <=
// window <= Retention. Errors: EINVALID.
func CheckRange(window, step time.Duration) error {
	if window < time.Second || window > Retention || window%time.Second != 0 {
		return gust.Errorf(gust.EINVALID, "invalid window %s: want whole seconds from 1s to %s", window, Retention)
	}
	if step < MinStep || step > window || step%time.Second != 0 {
		return gust.Errorf(gust.EINVALID, "invalid step %s: want whole seconds from 1s to the window (%s)", step, window)
	}
	return nil
}

// Series returns the statistics of function over the last window in points
// of step, oldest first. Points start at multiples of step (so a chart
// refreshed every few seconds does not shift its buckets); the last point
// is the one now falls in and may be partial, its RPS taken over the time
// elapsed in it. A function never seen yields points of zeros.
// Errors: EINVALID.
func (s *Stats) Series(function string, window, step time.Duration) ([]Point, error) {
	if err := gust.ValidateName(function); err != nil {
		return nil, err
	}
	if err := CheckRange(window, step); err != nil {
		return nil, err
	}
	now := s.now()
	nowSec := now.Unix()
	stepSec := int64(step / time.Second)
	n := int64((window + step - 1) / step)
	last := floorDiv(nowSec, stepSec) * stepSec
	first := last - (n-1)*stepSec
	pts := make([]Point, n)
	sr := s.lookup(function)
	for i := range pts {
		start := first + int64(i)*stepSec
		end := min(start+stepSec, nowSec+1)
		var a agg
		if sr != nil {
			sr.collect(start, end, &a)
		}
		elapsed := float64(stepSec)
		if i == len(pts)-1 {
			elapsed = max(1, now.Sub(time.Unix(start, 0)).Seconds())
		}
		pts[i] = a.point(time.Unix(start, 0).UTC(), elapsed)
	}
	return pts, nil
}

// Summary is one function's statistics over a window.
type Summary struct {
	Function string `json:"function"`
	Point
}

// Summaries returns the statistics of every function with activity in the
// last window of whole seconds (the current, partial second is left out so
// that RPS is exact), sorted by name. Errors: EINVALID.
func (s *Stats) Summaries(window time.Duration) ([]Summary, error) {
	if err := CheckRange(window, window); err != nil {
		return nil, err
	}
	nowSec := s.now().Unix()
	start := nowSec - int64(window/time.Second)
	out := []Summary{}
	for name, sr := range *s.fns.Load() {
		var a agg
		sr.collect(start, nowSec, &a)
		if a.invocations+a.throttles > 0 {
			out = append(out, Summary{Function: name, Point: a.point(time.Unix(start, 0).UTC(), window.Seconds())})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	return out, nil
}

// agg sums slots.
type agg struct {
	invocations, errors, throttles, coldStarts int64
	hist                                       wideHistogram
}

// collect adds the seconds in [from, to) to a.
func (sr *series) collect(from, to int64, a *agg) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	from = max(from, sr.last-slots+1)
	for sec := from; sec < to; sec++ {
		sl := &sr.ring[mod(sec)]
		if sl.sec != sec {
			continue
		}
		a.invocations += int64(sl.invocations)
		a.errors += int64(sl.errors)
		a.throttles += int64(sl.throttles)
		a.coldStarts += int64(sl.coldStarts)
		if sl.hist != nil {
			a.hist.merge(sl.hist)
		}
	}
}

func (a *agg) point(t time.Time, elapsed float64) Point {
	return Point{
		T: t, Invocations: a.invocations, Errors: a.errors, Throttles: a.throttles, ColdStarts: a.coldStarts,
		P50Ms: round3(a.hist.quantile(0.50)), P99Ms: round3(a.hist.quantile(0.99)),
		RPS: round3(float64(a.invocations) / elapsed),
	}
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
