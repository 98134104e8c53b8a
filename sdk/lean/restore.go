package lean

import "github.com/gustfaas/gust/sdk/internal/abi"

// OnRestore registers f to run in every instance gust starts from a
// pre-initialized snapshot of the function (see package sdk), before the
// instance's first request. Call it from init.
func OnRestore(f func()) { abi.OnRestore(f) }
