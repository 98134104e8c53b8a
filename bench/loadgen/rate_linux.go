//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// defaultEngine is the one bench/run measures with.
const defaultEngine = "epoll"

func init() { engines["epoll"] = openLoopEpoll }

// openLoopEpoll runs the open loop as wrk2 does: one OS thread, the
// connections non-blocking in an epoll set, the thread asleep in
// epoll_pwait2 until the next request is due or an answer arrives. A
// request costs it a write and, per answer, a read and a wake-up that
// often serves several connections, about a tenth of what a goroutine and
// thread per connection cost (openLoopThreads). That matters because the
// generator shares two cores with the server under test: whatever it
// burns, the heavier server misses more, and the difference would be
// charged to the server. What is measured does not change: request i is
// due at start + i/rate on connection i mod conns, latency counts from the
// due time, service time from the write.
func openLoopEpoll(t *target, rate float64, dur time.Duration, conns int, timeout time.Duration) (RateResult, error) {
	n := int(rate * dur.Seconds())
	s := newSamples(n)
	if n == 0 {
		return s.result(t, rate, dur, conns, 0), nil
	}
	addr, err := sockaddrOf(t.addr)
	if err != nil {
		return RateResult{}, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The default timer slack (50 µs) would make every wake-up late by up
	// to that much; restore it for the next user of this thread.
	if old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0); err == nil {
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
		defer unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return RateResult{}, fmt.Errorf("epoll_create1: %w", err)
	}
	defer unix.Close(ep)

	l := &epollLoop{t: t, s: s, n: n, ep: ep, addr: addr, timeout: timeout, interval: float64(time.Second) / rate}
	l.conns = make([]econn, min(conns, n))
	for c := range l.conns {
		l.conns[c] = econn{idx: int32(c), fd: -1, next: c, inflight: -1, buf: make([]byte, 0, 16<<10)}
	}
	defer func() {
		for c := range l.conns {
			l.conns[c].close()
		}
	}()
	l.start = time.Now().Add(10 * time.Millisecond)
	if err := l.run(); err != nil {
		return RateResult{}, err
	}
	return s.result(t, rate, dur, conns, l.last), nil
}

// econn is one connection of the loop and the request it carries.
type econn struct {
	idx      int32 // in epollLoop.conns, the epoll events' data
	fd       int
	next     int           // index of its next request; += len(conns)
	inflight int           // index of the request awaiting its answer, or -1
	sentAt   time.Duration // since start
	buf      []byte        // unparsed bytes of the answer
	inBody   bool          // the header is parsed; bodyLeft bytes to go
	bodyLeft int64
	code     int
	keep     bool
}

func (c *econn) close() {
	if c.fd >= 0 {
		_ = unix.Close(c.fd) // leaves the epoll set with its last reference
		c.fd = -1
	}
	c.buf, c.inBody = c.buf[:0], false
}

type epollLoop struct {
	t        *target
	s        *samples
	n        int
	ep       int
	addr     unix.Sockaddr
	timeout  time.Duration
	interval float64
	start    time.Time
	conns    []econn
	done     int           // requests answered or failed
	last     time.Duration // when the last one ended, since start
}

func (l *epollLoop) due(i int) time.Duration { return time.Duration(float64(i) * l.interval) }
func (l *epollLoop) now() time.Duration      { return time.Since(l.start) }

// run loops until every request is answered or failed. Each pass either
// sends, takes answers, or sleeps until the next due time or deadline, and
// every request ends within its timeout, so the loop is bounded.
func (l *epollLoop) run() error {
	events := make([]unix.EpollEvent, len(l.conns))
	for l.done < l.n {
		now := l.now()
		wake := time.Duration(math.MaxInt64)
		for ci := range l.conns {
			c := &l.conns[ci]
			if c.inflight >= 0 {
				if now-c.sentAt >= l.timeout {
					l.fail(c, now)
				} else {
					wake = min(wake, c.sentAt+l.timeout)
					continue
				}
			}
			for c.inflight < 0 && c.next < l.n {
				if d := l.due(c.next); d > now {
					wake = min(wake, d)
					break
				}
				l.send(c, now)
			}
			if c.inflight >= 0 { // just sent: wake by its deadline at the latest
				wake = min(wake, c.sentAt+l.timeout)
			}
		}
		if l.done == l.n {
			break
		}
		var ts *unix.Timespec
		if wake != math.MaxInt64 {
			t := unix.NsecToTimespec(int64(max(0, wake-l.now())))
			ts = &t
		}
		k, err := epollPwait2(l.ep, events, ts)
		if err != nil {
			if errors.Is(err, unix.EINTR) { // the Go runtime's preemption signal
				continue
			}
			return fmt.Errorf("epoll_pwait2: %w", err)
		}
		for _, ev := range events[:k] {
			l.readable(&l.conns[ev.Fd])
		}
	}
	return nil
}

// send writes c's next request, dialing first if c has no connection.
func (l *epollLoop) send(c *econn, now time.Duration) {
	i := c.next
	c.next += len(l.conns)
	if c.fd < 0 {
		if err := l.dial(c); err != nil {
			l.end(i, 0, now)
			return
		}
	}
	c.inflight, c.sentAt = i, l.now()
	l.s.lag[i] = c.sentAt - l.due(i)
	// A request is far smaller than an empty socket buffer: a short write
	// means the connection is broken.
	if w, err := unix.Write(c.fd, l.t.req); err != nil || w != len(l.t.req) {
		l.fail(c, l.now())
	}
}

// readable reads what arrived on c and ends its request once the whole
// answer is in. One read per wake-up: epoll is level-triggered, so what is
// left wakes the loop again.
func (l *epollLoop) readable(c *econn) {
	if c.fd < 0 {
		return
	}
	if len(c.buf) == cap(c.buf) {
		l.fail(c, l.now()) // a header larger than the buffer
		return
	}
	r, err := unix.Read(c.fd, c.buf[len(c.buf):cap(c.buf)])
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	now := l.now()
	if err != nil || r == 0 || c.inflight < 0 {
		// Closed, broken, or an answer nobody asked for: an idle
		// connection the server closed is reopened by the next send.
		l.fail(c, now)
		return
	}
	c.buf = c.buf[:len(c.buf)+r]
	if !c.inBody {
		end := bytes.Index(c.buf, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		if err := c.parseHead(c.buf[:end+2]); err != nil {
			l.fail(c, now)
			return
		}
		c.buf = c.buf[:copy(c.buf, c.buf[end+4:])]
		c.inBody = true
	}
	take := min(c.bodyLeft, int64(len(c.buf)))
	c.bodyLeft -= take
	c.buf = c.buf[:copy(c.buf, c.buf[take:])]
	if c.bodyLeft > 0 {
		return
	}
	if len(c.buf) > 0 { // bytes past the answer: the stream is out of step
		l.fail(c, now)
		return
	}
	i := c.inflight
	c.inflight, c.inBody = -1, false
	l.s.svc[i] = now - c.sentAt
	l.end(i, c.code, now)
	if !c.keep {
		c.close()
	}
}

// parseHead parses the status line and header fields, each line ending
// in CRLF.
func (c *econn) parseHead(h []byte) error {
	line, rest, _ := bytes.Cut(h, []byte("\r\n"))
	code, err := statusCode(line)
	if err != nil {
		return err
	}
	hd := head{length: -1}
	for lines := 0; len(rest) > 0; lines++ {
		if lines == maxHeaderLines {
			return fmt.Errorf("more than %d header lines", maxHeaderLines)
		}
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if err := hd.field(line); err != nil {
			return err
		}
	}
	if hd.length < 0 {
		return errNoLength
	}
	c.code, c.bodyLeft, c.keep = code, hd.length, !hd.close
	return nil
}

// fail ends c's request in flight, if any, as an error and drops the
// connection.
func (l *epollLoop) fail(c *econn, now time.Duration) {
	if i := c.inflight; i >= 0 {
		c.inflight = -1
		l.s.svc[i] = now - c.sentAt
		l.end(i, 0, now)
	}
	c.close()
}

// end records request i's outcome (code 0: failed).
func (l *epollLoop) end(i, code int, now time.Duration) {
	l.s.lat[i] = now - l.due(i)
	l.s.codes[i] = code
	l.done++
	l.last = max(l.last, now)
}

// dial connects c without blocking the loop for longer than the old
// engine's dial timeout, and adds it to the epoll set.
func (l *epollLoop) dial(c *econn) error {
	family := unix.AF_INET
	if _, ok := l.addr.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := connect(fd, l.addr, 5*time.Second); err != nil {
		unix.Close(fd)
		return err
	}
	// As wrk and Go's net package do: a request goes out when written.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.idx}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	c.fd = fd
	return nil
}

// connect completes a non-blocking connect within timeout.
func connect(fd int, sa unix.Sockaddr, timeout time.Duration) error {
	err := unix.Connect(fd, sa)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINPROGRESS) {
		return fmt.Errorf("connect: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for range 100 { // bounded: each pass waits for what is left of timeout
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		k, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if k == 0 {
			continue
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return fmt.Errorf("getsockopt: %w", err)
		}
		if soerr != 0 {
			return fmt.Errorf("connect: %w", unix.Errno(soerr))
		}
		return nil
	}
	return fmt.Errorf("connect: timed out after %s", timeout)
}

// sockaddrOf resolves host:port once, before the loop starts.
func sockaddrOf(hostport string) (unix.Sockaddr, error) {
	a, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", hostport, err)
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return sa, nil
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa, nil
}

// epollPwait2 is epoll_wait with a timeout in nanoseconds (Linux 5.11):
// epoll_wait's is in milliseconds, too coarse to send on time. A nil
// timeout waits until an event.
func epollPwait2(ep int, events []unix.EpollEvent, ts *unix.Timespec) (int, error) {
	k, _, errno := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(unsafe.Pointer(ts)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(k), nil
}
