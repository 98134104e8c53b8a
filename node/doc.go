// Package node assembles one gust node from its parts: the broker
// (embedded or external NATS JetStream), the registry, the drivers, the
// memory budget, the invoker with its pools, the meter and metrics, the
// gateway and the admin API, all behind one HTTP listener. `gust serve`
// and the end-to-end tests both start a node through Start, so what the
// tests exercise is what users run.
//
// It only wires: behaviour belongs in the parts.
package node
