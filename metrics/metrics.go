package metrics

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gustfaas/gust"
)

// durationBuckets span a warm wasm call (≈100 µs) to a long function (30 s).
var durationBuckets = [...]float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// queueBuckets span no wait to a long queue timeout.
var queueBuckets = [...]float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// statuses are the metered statuses; every function has a counter for
// each from its first invocation, so Record never builds a label set.
var statuses = [...]string{gust.StatusOK, gust.StatusError, gust.StatusTimeout, gust.StatusThrottled, gust.StatusOOM}

var (
	invocationsDesc = prometheus.NewDesc("gust_invocations_total",
		"Finished invocations by function and status (ok, error, timeout, throttled, oom).",
		[]string{"function", "status"}, nil)
	durationDesc = prometheus.NewDesc("gust_invocation_duration_seconds",
		"Time functions ran, throttled invocations excluded.", []string{"function"}, nil)
	coldStartsDesc = prometheus.NewDesc("gust_cold_starts_total",
		"Invocations that started a new instance.", []string{"function"}, nil)
	throttlesDesc = prometheus.NewDesc("gust_throttles_total",
		"Invocations refused for lack of concurrency or capacity.", []string{"function"}, nil)
	queueWaitDesc = prometheus.NewDesc("gust_queue_wait_seconds",
		"Time invocations waited for an instance.", []string{"function"}, nil)
)

// Metrics holds gust's Prometheus metrics. Build it with New.
//
// The per-invocation metrics are plain counters under one short lock per
// function, turned into Prometheus metrics at scrape time: client_golang's
// histograms pay several atomic operations and a compare-and-swap loop per
// observation, and Record runs on every invocation while a scrape comes
// every few seconds.
type Metrics struct {
	gatherer prometheus.Gatherer

	fns   atomic.Pointer[map[string]*fnMetrics] // copied on write: a new function is rare
	fnsMu sync.Mutex                            // serializes those copies
}

var _ gust.Recorder = (*Metrics)(nil)

// fnMetrics are one function's counts.
type fnMetrics struct {
	name string

	mu         sync.Mutex
	byStatus   [len(statuses)]uint64
	other      map[string]uint64 // statuses not in statuses: a caller's bug, still counted
	coldStarts uint64
	throttles  uint64
	duration   histogram
	queueWait  histogram
}

// histogram counts observations per bucket (not cumulative; the last
// counts those above every bound) and their sum, in seconds.
type histogram struct {
	counts [max(len(durationBuckets), len(queueBuckets)) + 1]uint64
	sum    float64
}

func (h *histogram) observe(bounds []float64, v float64) {
	i := 0
	for i < len(bounds) && v > bounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += v
}

// metric returns h as a constant Prometheus histogram.
func (h *histogram) metric(desc *prometheus.Desc, bounds []float64, function string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var n uint64
	for i, b := range bounds {
		n += h.counts[i]
		buckets[b] = n
	}
	n += h.counts[len(bounds)]
	return prometheus.MustNewConstHistogram(desc, n, h.sum, buckets, function)
}

// New registers gust's metrics on reg (a new registry if nil) and a
// collector that reads stats at every scrape. stats may be nil when this
// process runs no pools. It panics if the metrics are already registered
// on reg, like prometheus.MustRegister.
func New(reg prometheus.Registerer, stats func() []gust.PoolStats) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{gatherer: prometheus.DefaultGatherer}
	m.fns.Store(&map[string]*fnMetrics{})
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}
	reg.MustRegister((*invocationCollector)(m))
	if stats != nil {
		reg.MustRegister(&poolCollector{stats: stats})
	}
	return m
}

func (m *Metrics) function(name string) *fnMetrics {
	if f := (*m.fns.Load())[name]; f != nil {
		return f
	}
	m.fnsMu.Lock()
	defer m.fnsMu.Unlock()
	old := *m.fns.Load()
	if f := old[name]; f != nil {
		return f
	}
	fns := make(map[string]*fnMetrics, len(old)+1)
	maps.Copy(fns, old)
	f := &fnMetrics{name: name}
	fns[name] = f
	m.fns.Store(&fns)
	return f
}

// Record counts one finished invocation. After a function's first call it
// costs a map lookup and a few additions under the function's lock.
func (m *Metrics) Record(inv *gust.Invocation) {
	if inv == nil {
		return
	}
	f := m.function(inv.Function)
	status := inv.Status
	if status == "" {
		status = gust.StatusOK
	}
	idx := -1
	for i, s := range statuses {
		if s == status {
			idx = i
			break
		}
	}
	queued, ran := inv.QueueWait.Seconds(), inv.Duration.Seconds()
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx >= 0 {
		f.byStatus[idx]++
	} else {
		if f.other == nil {
			f.other = map[string]uint64{}
		}
		f.other[status]++
	}
	f.queueWait.observe(queueBuckets[:], queued)
	if status == gust.StatusThrottled {
		f.throttles++
		return
	}
	f.duration.observe(durationBuckets[:], ran)
	if inv.Cold {
		f.coldStarts++
	}
}

// invocationCollector turns the counts of Record into Prometheus metrics
// at scrape time.
type invocationCollector Metrics

func (c *invocationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- invocationsDesc
	ch <- durationDesc
	ch <- coldStartsDesc
	ch <- throttlesDesc
	ch <- queueWaitDesc
}

func (c *invocationCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range *c.fns.Load() {
		f.mu.Lock()
		byStatus, cold, throttles, duration, queueWait := f.byStatus, f.coldStarts, f.throttles, f.duration, f.queueWait
		other := maps.Clone(f.other)
		f.mu.Unlock()
		for i, s := range statuses {
			ch <- prometheus.MustNewConstMetric(invocationsDesc, prometheus.CounterValue, float64(byStatus[i]), f.name, s)
		}
		for s, n := range other {
			ch <- prometheus.MustNewConstMetric(invocationsDesc, prometheus.CounterValue, float64(n), f.name, s)
		}
		ch <- prometheus.MustNewConstMetric(coldStartsDesc, prometheus.CounterValue, float64(cold), f.name)
		ch <- prometheus.MustNewConstMetric(throttlesDesc, prometheus.CounterValue, float64(throttles), f.name)
		ch <- duration.metric(durationDesc, durationBuckets[:], f.name)
		ch <- queueWait.metric(queueWaitDesc, queueBuckets[:], f.name)
	}
}

// Handler serves the registry New registered on (or the default gatherer
// if that registerer cannot gather) in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// poolCollector turns a PoolStats snapshot into gauges at scrape time, so
// the gauges are never stale and Record never touches them.
type poolCollector struct {
	stats func() []gust.PoolStats
}

var (
	instancesDesc = prometheus.NewDesc("gust_instances",
		"Instances on this node by function, version and state (idle, busy, starting).",
		[]string{"function", "version", "state"}, nil)
	inFlightDesc = prometheus.NewDesc("gust_in_flight",
		"Invocations running on this node.", []string{"function"}, nil)
	queueDepthDesc = prometheus.NewDesc("gust_queue_depth",
		"Invocations waiting for an instance on this node.", []string{"function"}, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- instancesDesc
	ch <- inFlightDesc
	ch <- queueDepthDesc
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	type fv struct {
		function string
		version  int
	}
	type counts struct{ idle, busy, starting int }
	instances := map[fv]*counts{}
	var order []fv
	inFlight := map[string]int{}
	queued := map[string]int{}
	var fns []string
	// Sum duplicates: a metric emitted twice fails the whole scrape.
	for _, s := range c.stats() {
		k := fv{s.Function, s.Version}
		n := instances[k]
		if n == nil {
			n = &counts{}
			instances[k] = n
			order = append(order, k)
		}
		n.idle += s.Idle
		n.busy += s.Busy
		n.starting += s.Starting
		if _, ok := inFlight[s.Function]; !ok {
			fns = append(fns, s.Function)
		}
		inFlight[s.Function] += s.InFlight
		queued[s.Function] += s.Waiting
	}
	for _, k := range order {
		n := instances[k]
		v := strconv.Itoa(k.version)
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n.idle), k.function, v, "idle")
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n.busy), k.function, v, "busy")
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n.starting), k.function, v, "starting")
	}
	for _, f := range fns {
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(inFlight[f]), f)
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(queued[f]), f)
	}
}
