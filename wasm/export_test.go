package wasm

import "github.com/gustfaas/gust"

// MemorySize exposes an instance's linear memory size to the external
// tests and benchmarks.
func MemorySize(i gust.Instance) uint64 {
	if r, ok := i.(*reactor); ok {
		return r.MemorySize()
	}
	return 0
}
