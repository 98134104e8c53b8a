// Package gust is the domain of the gust serverless platform: functions and
// their immutable versions, the limits and scaling spec a version runs under,
// the request and response every event becomes, invocation records, the
// error codes every layer speaks, and the interfaces (Registry, Driver,
// Module, Instance) that the other packages implement.
//
// It imports the standard library only, and nothing in it does I/O. Every
// other package of gust points inward to this one: drivers (wasm, process),
// the registry on JetStream, the pool, the gateway and the admin API. Only
// cmd/gust wires them together.
package gust
