// Package stats keeps live per-function statistics of the last hour in
// memory: per second, how many invocations ran, failed (error, timeout,
// out of memory), were throttled or started cold, and a log-scale histogram
// of their durations, so that p50 and p99 can be read for any step. It is a
// gust.Recorder, and it serves the JSON behind the console's charts
// (GET /v1/functions/{name}/stats) and `gust top` (GET /v1/stats).
//
// It is a view of this node only and of the last hour only: it stores
// nothing, does no I/O on the invocation path and never blocks on anything
// but its own short per-function lock. Billing and history live in package
// meter, Prometheus metrics in package metrics; stats must not grow into
// either. It does not know the registry: a function it has not seen simply
// has no traffic.
package stats
