// Package metrics exposes gust's Prometheus metrics: counters and
// histograms fed by every finished invocation (it implements gust.Recorder)
// and gauges read from the pools at scrape time. It also offers Multi, the
// one fan-out that hands each invocation record to several recorders.
//
// Record is on the invocation path, so it does no I/O and no label lookup:
// it adds to plain per-function counts under one short lock, and the
// Prometheus counters and histograms are built from them at scrape time. The package must not import the
// pool, drivers or the gateway: pool state reaches it only through the
// stats function given to New.
package metrics
