// Package meter turns every finished invocation into a durable usage record
// and keeps hourly per-function aggregates of those records, from which it
// answers usage reports with an estimated cost.
//
// The life of a record: the invoker calls (*Meter).Record on the invocation
// path; the record is appended to a bounded in-memory buffer under a short
// lock (never blocking the caller, never allocating once the buffer has
// grown, and waking the publisher only when a batch starts or fills, not
// per record); the publisher takes the whole buffer once per flush
// interval and packs it into messages of many records each, one function
// per message (NDJSON, one record a line, compressed with S2, with a
// message id for dedup and a header summing what the message adds to each
// hour), which it sends to the GUST_USAGE stream with asynchronous
// publishes, waiting for their acks; a durable consumer on that stream,
// delivering headers only, folds each message's summary into hourly
// aggregates in the gust_usage KV bucket (a message without a summary is
// fetched whole and its records decoded). The consumer is shared by every
// node and pinned to one client at a time, so messages are applied in
// stream order and each is counted once; every aggregate remembers the
// last stream sequence it applied, so a redelivered message is skipped
// rather than counted twice. Everything NATS does (store, ack, dedup,
// deliver, KV update) is paid per message, and what it copies is a
// quarter of the records' JSON: that is what keeps metering cheap under
// load.
//
// The meter must not block or do I/O in Record, and it does not know about
// the pool, drivers or the gateway: it only sees gust.Invocation values.
// Metrics for Prometheus are package metrics, not this one.
package meter
