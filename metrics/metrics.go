package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gustfaas/gust"
)

// durationBuckets span a warm wasm call (≈100 µs) to a long function (30 s).
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// queueBuckets span no wait to a long queue timeout.
var queueBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// statuses are the metered statuses; children for them are made once per
// function so Record never looks labels up.
var statuses = [...]string{gust.StatusOK, gust.StatusError, gust.StatusTimeout, gust.StatusThrottled, gust.StatusOOM}

// Metrics holds gust's Prometheus metrics. Build it with New.
type Metrics struct {
	gatherer prometheus.Gatherer

	invocations *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	coldStarts  *prometheus.CounterVec
	throttles   *prometheus.CounterVec
	queueWait   *prometheus.HistogramVec

	fns sync.Map // function name -> *fnMetrics
}

var _ gust.Recorder = (*Metrics)(nil)

// fnMetrics are one function's children of the vectors.
type fnMetrics struct {
	byStatus   [len(statuses)]prometheus.Counter
	duration   prometheus.Observer
	coldStarts prometheus.Counter
	throttles  prometheus.Counter
	queueWait  prometheus.Observer
}

// New registers gust's metrics on reg (a new registry if nil) and a
// collector that reads stats at every scrape. stats may be nil when this
// process runs no pools. It panics if the metrics are already registered
// on reg, like prometheus.MustRegister.
func New(reg prometheus.Registerer, stats func() []gust.PoolStats) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		gatherer: prometheus.DefaultGatherer,
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gust_invocations_total",
			Help: "Finished invocations by function and status (ok, error, timeout, throttled, oom).",
		}, []string{"function", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gust_invocation_duration_seconds",
			Help:    "Time functions ran, throttled invocations excluded.",
			Buckets: durationBuckets,
		}, []string{"function"}),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gust_cold_starts_total",
			Help: "Invocations that started a new instance.",
		}, []string{"function"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gust_throttles_total",
			Help: "Invocations refused for lack of concurrency or capacity.",
		}, []string{"function"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gust_queue_wait_seconds",
			Help:    "Time invocations waited for an instance.",
			Buckets: queueBuckets,
		}, []string{"function"}),
	}
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}
	reg.MustRegister(m.invocations, m.duration, m.coldStarts, m.throttles, m.queueWait)
	if stats != nil {
		reg.MustRegister(&poolCollector{stats: stats})
	}
	return m
}

func (m *Metrics) function(name string) *fnMetrics {
	if f, ok := m.fns.Load(name); ok {
		return f.(*fnMetrics)
	}
	f := &fnMetrics{
		duration:   m.duration.WithLabelValues(name),
		coldStarts: m.coldStarts.WithLabelValues(name),
		throttles:  m.throttles.WithLabelValues(name),
		queueWait:  m.queueWait.WithLabelValues(name),
	}
	for i, s := range statuses {
		f.byStatus[i] = m.invocations.WithLabelValues(name, s)
	}
	actual, _ := m.fns.LoadOrStore(name, f)
	return actual.(*fnMetrics)
}

// Record counts one finished invocation. After a function's first call it
// costs a map load and a few atomic adds.
func (m *Metrics) Record(inv *gust.Invocation) {
	if inv == nil {
		return
	}
	f := m.function(inv.Function)
	status := inv.Status
	if status == "" {
		status = gust.StatusOK
	}
	counted := false
	for i, s := range statuses {
		if s == status {
			f.byStatus[i].Inc()
			counted = true
			break
		}
	}
	if !counted {
		// Not one of the metered statuses: a caller's bug, still counted.
		m.invocations.WithLabelValues(inv.Function, status).Inc()
	}
	f.queueWait.Observe(inv.QueueWait.Seconds())
	if status == gust.StatusThrottled {
		f.throttles.Inc()
		return
	}
	f.duration.Observe(inv.Duration.Seconds())
	if inv.Cold {
		f.coldStarts.Inc()
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
