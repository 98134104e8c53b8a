package sdk

import "github.com/gustfaas/gust/sdk/internal/abi"

// OnRestore registers f to run in every instance gust starts from a
// pre-initialized snapshot instead of running init (see "Snapshots" in the
// package doc), before the instance's first request. Call it from init.
//
// Use it for state that must differ per instance: an instance id, a seed
// of your own random source, a timestamp of when the instance started.
//
//	var instanceID string
//
//	func init() {
//		newID := func() { instanceID = rand.Text() }
//		newID()
//		sdk.OnRestore(newID)
//		sdk.HandleFunc(hello)
//	}
func OnRestore(f func()) { abi.OnRestore(f) }
