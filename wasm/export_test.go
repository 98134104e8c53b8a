package wasm

import (
	"github.com/tetratelabs/wazero/api"

	"github.com/gustfaas/gust"
)

// InstanceMemory returns the linear memory of a reactor instance, for tests
// that look at it from the host.
func InstanceMemory(i gust.Instance) api.Memory { return i.(*reactor).mem }
