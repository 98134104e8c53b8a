package wasm

import "github.com/gustfaas/gust"

// MemorySize returns the size in bytes of the linear memory of an instance
// this driver started, for memory accounting and metrics. It is 0 for a
// WAGI handle, whose instances live only during a call, and for instances
// of other drivers.
func MemorySize(i gust.Instance) uint64 {
	if r, ok := i.(*reactor); ok {
		return r.MemorySize()
	}
	return 0
}
