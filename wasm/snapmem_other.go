//go:build !linux

package wasm

import "github.com/tetratelabs/wazero/experimental"

// mapMemory is Linux only: elsewhere a restored instance copies the
// snapshot.
func (img *image) mapMemory(uint64) experimental.LinearMemory { return nil }
