// Package registry implements gust.Registry on NATS JetStream: functions,
// their immutable versions and aliases in a KV bucket, code artifacts in an
// object store named by their sha256.
//
// Layout of the KV bucket gust_registry:
//
//	fn.NAME       JSON gust.Function (aliases, live and latest version)
//	ver.NAME.N    JSON gust.Version, written once
//
// Code lives in the object store gust_code under the hex of its sha256, so
// the same code deployed twice, or by two functions, is stored once.
//
// Writes go straight to JetStream with optimistic concurrency (KV revisions),
// so concurrent deploys on one node or many never share a version number.
// Reads are on the invocation path and never touch the network: a KV watch
// keeps an in-memory copy of the bucket current, and every write through a
// Registry updates that copy before it returns.
//
// It must not compile, run or inspect code (that is a driver's job), and must
// not decide which version a request runs (the invoker picks with
// gust.Alias.Pick).
package registry
