//go:build !linux

package process

import (
	"errors"
	"net"
)

// connPeerUID cannot tell who owns a socket outside Linux, where
// functions run as gust's own user anyway (see sandbox_other.go).
func connPeerUID(c net.Conn) (int, error) { return -1, errors.ErrUnsupported }
