// Package broker starts or connects to the NATS JetStream that holds gust's
// state: the registry's KV bucket and object store, and the streams of the
// async queue, logs and usage records.
//
// With no URL it runs nats-server inside the gust process (file store under
// the data dir, no network listener unless asked, clients connect
// in-process); with a URL it connects to an external NATS, which is how gust
// runs as a cluster. Either way the rest of gust sees the same
// jetstream.JetStream, so one code path serves one node and many.
//
// It also owns the replica count every bucket and stream is created with
// (EnsureKeyValue, EnsureObjectStore, EnsureStream), so that choice is made in
// one place.
//
// It must not know what gust stores: no bucket names, keys or domain types
// live here.
package broker
