// Package invoke is the invoker: it turns "run this function with this
// request" into a call on a warm or newly started instance. It resolves a
// function reference (live alias, another alias, or a version number) to one
// immutable version through the registry, loads that version's code through
// the driver for its runtime, keeps one instance pool per version, enforces
// the version's timeout, and hands every finished invocation to the
// Recorder.
//
// It keeps pools in step with the registry: a version that no alias points
// at any more is drained (in-flight calls finish on it) and its instances
// are closed; a version with minInstances is prewarmed after a deploy and at
// start.
//
// It must not know HTTP (that is the gateway) or a driver's internals (it
// speaks gust.Driver); it does not pick HTTP statuses.
package invoke
