package node

import (
	"os"
	"runtime/debug"
)

// ServeGCPercent is the Go GC target gust serve runs with unless GOGC is
// set. A node's own heap is small next to its function instances (their
// memory is mapped outside it), and at the default of 100 collecting it
// took 8–10% of the node's CPU under invocation and accept load; 200
// halves the collections for a few tens of MB more heap.
const ServeGCPercent = 200

// TuneGC applies ServeGCPercent unless the operator chose with GOGC.
// It is for the gust serve process, not for programs embedding a node.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(ServeGCPercent)
}
