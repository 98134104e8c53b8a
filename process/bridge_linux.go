package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The bridge is how gust and an instance in its own network namespace
// reach each other without sharing a network: a SOCK_SEQPACKET socket
// pair between gust and the instance's helper carries, as file
// descriptors, one end of a fresh socket pair per connection. gust hands
// the helper connections for the function's $PORT (http protocol); the
// helper hands gust the function's connections to the Runtime API
// (lambda protocol). No address, port or path exists outside the
// namespace that anything else could connect to.

// controlPair returns gust's end of a new control socket pair and the
// helper's end as a file to pass on.
func controlPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	f := os.NewFile(uintptr(fds[0]), "control")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "control"), nil
}

func closeConn(c *net.UnixConn) {
	if c != nil {
		_ = c.Close()
	}
}

// streamPair returns a connected pair: gust's end as a net.Conn and the
// other end's descriptor, to send.
func streamPair() (net.Conn, int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, -1, err
	}
	f := os.NewFile(uintptr(fds[0]), "bridge")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, -1, err
	}
	return c, fds[1], nil
}

// dialBridge opens a connection to the function's $PORT through the
// helper. It fails with errNotListening while the function has not
// started listening.
func (p *proc) dialBridge(ctx context.Context) (net.Conn, error) {
	return p.bridgeConn(ctx, msgConn)
}

// probeBridge is dialBridge for a function that is starting: the helper
// retries (see startProbeWait) until the function listens.
func (p *proc) probeBridge(ctx context.Context) (net.Conn, error) {
	return p.bridgeConn(ctx, msgWaitConn)
}

func (p *proc) bridgeConn(ctx context.Context, kind byte) (net.Conn, error) {
	if p.ctl == nil {
		return nil, errors.New("instance has no bridge")
	}
	c, fd, err := streamPair()
	if err != nil {
		return nil, fmt.Errorf("bridge socket: %w", err)
	}
	p.ctlMu.Lock()
	err = sendMsg(p.ctl, []byte{kind}, fd)
	p.ctlMu.Unlock()
	unix.Close(fd)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bridge to instance: %w", err)
	}
	// The helper answers one byte once it has dialed the function: 1
	// with the connected socket attached, 0 if the function does not
	// listen. The socket pair only carried the question.
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	msg, conn, err := recvMsg(c.(*net.UnixConn))
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("bridge to instance: %w", err)
	}
	if len(msg) != 1 || msg[0] != 1 || conn < 0 {
		if conn >= 0 {
			unix.Close(conn)
		}
		return nil, errNotListening
	}
	return fdConn(conn)
}

// fdConn makes a connection of a socket received from a helper.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "bridged")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("bridged connection: %w", err)
	}
	return c, nil
}

// bridgeListener is the Runtime API's listener for an instance in its own
// network namespace: each connection the function opens to
// $AWS_LAMBDA_RUNTIME_API arrives as a descriptor on the control socket.
// Control replies (a pool worker's specialization) arrive on the same
// socket and go to replies.
type bridgeListener struct {
	p       *proc
	conns   chan net.Conn
	replies chan []byte
	done    chan struct{}
	once    sync.Once
}

func newBridgeListener(p *proc) *bridgeListener {
	l := &bridgeListener{p: p, conns: make(chan net.Conn), replies: make(chan []byte, 1), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *bridgeListener) loop() {
	defer l.Close()
	for {
		msg, fd, err := recvMsg(l.p.ctl)
		if err != nil {
			return
		}
		switch {
		case len(msg) > 0 && msg[0] == msgConn && fd >= 0:
			c, err := fdConn(fd)
			if err != nil {
				continue
			}
			select {
			case l.conns <- c:
			case <-l.done:
				c.Close()
				return
			}
		case len(msg) > 0 && msg[0] == msgSpecialized:
			if fd >= 0 {
				unix.Close(fd)
			}
			select {
			case l.replies <- msg[1:]:
			default:
			}
		default:
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
}

func (l *bridgeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *bridgeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *bridgeListener) Addr() net.Addr {
	return &net.UnixAddr{Name: "gust-bridge", Net: "unixpacket"}
}

// detachedReadOnly returns a detached, read-only bind mount of dir: what
// the helper of another mount namespace can attach (a plain bind mount's
// source must be in the caller's own mount namespace).
func detachedReadOnly(dir string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("detached mount of %s: %w", dir, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("make the mount of %s read-only: %w", dir, err)
	}
	return fd, nil
}

// specialize has a pool worker's helper mount codeDir as the task root
// and become uid, and waits for its answer.
func (l *bridgeListener) specialize(ctx context.Context, codeDir string, uid int) error {
	var fd = -1
	if codeDir != "" {
		var err error
		fd, err = detachedReadOnly(codeDir)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
	}
	l.p.ctlMu.Lock()
	err := sendMsg(l.p.ctl, append([]byte{msgSpecialize}, strconv.Itoa(uid)...), fd)
	l.p.ctlMu.Unlock()
	if err != nil {
		return fmt.Errorf("specialize: %w", err)
	}
	select {
	case r := <-l.replies:
		if len(r) > 0 {
			return fmt.Errorf("specialize: %s", r)
		}
		return nil
	case <-l.done:
		return errors.New("specialize: the worker is gone")
	case <-ctx.Done():
		return ctx.Err()
	}
}
