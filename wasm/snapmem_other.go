//go:build !linux

package wasm

// newRestorableMemory returns a memory in the Go heap: mapping the snapshot
// copy-on-write is Linux only, so elsewhere a restored instance copies it.
func newRestorableMemory(max uint64, _ *recycler) restorableMemory { return &heapMemory{max: max} }

// recycler keeps nothing where memories are not mapped.
type recycler struct{}

func (*recycler) close() {}

// imageView maps nothing where memories are not mapped.
type imageView struct{}

func (*imageView) close() {}
