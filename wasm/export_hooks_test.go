package wasm

import (
	"github.com/tetratelabs/wazero/api"

	"github.com/gustfaas/gust"
)

// WrapHandle replaces the guest function a reactor instance calls for a
// request, for tests that must make a call end on cue.
func WrapHandle(i gust.Instance, wrap func(mod api.Module, handle api.Function) api.Function) {
	r := i.(*reactor)
	r.handle = wrap(r.mod, r.handle)
}

// SnapshotDir returns the directory the driver writes snapshots into.
func SnapshotDir(d *Driver) string { return d.snapshotDir }
