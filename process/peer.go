package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// peerUID is the user whose sockets may talk to the module's instances
// over the host's loopback (egress, or no network namespaces): the
// function's own user when the sandbox runs it as one, else gust's own,
// which functions then run as.
func (m *module) peerUID() int {
	if m.d.sb.ownUser {
		return m.uid
	}
	return os.Geteuid()
}

// errPortOwner is a connection to $PORT whose listener belongs to another
// user than the function's: another process holds the port.
var errPortOwner = errors.New("the port is held by another user's process")

// checkPeer returns nil if the other end of c belongs to uid. Where the
// owner cannot be known (outside Linux) every peer passes.
func checkPeer(c net.Conn, uid int) error {
	got, err := connPeerUID(c)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return nil
	case err != nil:
		return fmt.Errorf("cannot tell who owns the other end of %s: %w", c.RemoteAddr(), err)
	case got != uid:
		return fmt.Errorf("%w: uid %d, not the function's %d", errPortOwner, got, uid)
	}
	return nil
}

// ownedDial wraps dial so that it only returns connections to a socket of
// uid: an http function in the host's network is proxied to only once
// its own process, not whatever grabbed the port, is listening.
func ownedDial(dial func(ctx context.Context, network, addr string) (net.Conn, error), uid int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := checkPeer(c, uid); err != nil {
			c.Close()
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		return c, nil
	}
}

// ownerListener accepts only connections from sockets of uid: a Runtime
// API on the host's loopback serves the instance's own process, and no
// other local process may take its events or answer for it.
type ownerListener struct {
	net.Listener
	uid      int
	function string
	log      *slog.Logger
}

// forbidden is what a refused connection reads before it is closed.
var forbidden = func() []byte {
	body := `{"errorType":"Forbidden","errorMessage":"this Runtime API serves another process"}` + "\n"
	return fmt.Appendf(nil, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

func (l *ownerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		err = checkPeer(c, l.uid)
		if err == nil {
			return c, nil
		}
		l.log.Warn("refused a connection to a function's Runtime API from another process", "function", l.function, "from", c.RemoteAddr().String(), "err", err)
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(forbidden)
		c.Close()
	}
}
