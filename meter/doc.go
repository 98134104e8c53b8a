// Package meter turns every finished invocation into a durable usage record
// and keeps hourly per-function aggregates of those records, from which it
// answers usage reports with an estimated cost.
//
// The life of a record: the invoker calls (*Meter).Record on the invocation
// path; the record goes into a bounded in-memory buffer (never blocking the
// caller); a background publisher sends buffered records in batches to the
// GUST_USAGE stream with asynchronous publishes and waits for their acks; a
// durable consumer on that stream folds records into hourly aggregates in
// the gust_usage KV bucket. The consumer is shared by every node and pinned
// to one client at a time, so records are applied in stream order and each
// is counted once; every aggregate remembers the last stream sequence it
// applied, so a redelivered record is skipped rather than counted twice.
//
// The meter must not block or do I/O in Record, and it does not know about
// the pool, drivers or the gateway: it only sees gust.Invocation values.
// Metrics for Prometheus are package metrics, not this one.
package meter
