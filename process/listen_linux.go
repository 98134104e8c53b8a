package process

import (
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An http function is ready once it listens on $PORT. Polling for that
// costs the cold start twice: the poll interval is latency after the
// listen, and every refused connect before it wakes the helper on a
// machine whose other core the function's start needs. So the helper
// learns of the listen instead: it starts the function under a seccomp
// filter whose only effect is to tell it (SECCOMP_RET_USER_NOTIF) of
// each listen(2) call, which it lets through unchanged at once
// (SECCOMP_USER_NOTIF_FLAG_CONTINUE), then connects. The filter decides
// nothing and denies nothing: it adds a notification to the sandbox,
// not a hole. A listen the filter cannot see (another architecture's
// system call, io_uring) is still found by a slow poll.

// seccompNotif is struct seccomp_notif.
type seccompNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  struct {
		Nr   int32
		Arch uint32
		IP   uint64
		Args [6]uint64
	}
}

// seccompNotifResp is struct seccomp_notif_resp.
type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// The kernel checks the sizes through the ioctl numbers.
var (
	_ [80 - unsafe.Sizeof(seccompNotif{})]byte
	_ [unsafe.Sizeof(seccompNotif{}) - 80]byte
	_ [24 - unsafe.Sizeof(seccompNotifResp{})]byte
	_ [unsafe.Sizeof(seccompNotifResp{}) - 24]byte
)

// listenPollFallback is the poll interval that remains, for a listen the
// filter does not see, when the helper is told of listens.
const listenPollFallback = 5 * time.Millisecond

// listenSettle is how long after letting a listen through the helper
// first connects: the call completes once the function's thread runs
// again.
const listenSettle = 20 * time.Microsecond

// auditArch is the AUDIT_ARCH value of this binary's system calls, or 0
// where the filter is not built.
func auditArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	return 0
}

// notifyListens installs, on the calling thread (which must have
// no_new_privs set and be the one that forks the function, which
// inherits the filter), a seccomp filter that reports listen calls on
// the descriptor it returns (close-on-exec: the function does not get
// it).
func notifyListens() (int, error) {
	arch := auditArch()
	if arch == 0 {
		return -1, errors.New("no seccomp filter for " + runtime.GOARCH)
	}
	if !kernelAtLeast(5, 5) {
		// Listeners exist since 5.0, but letting a call through
		// (SECCOMP_USER_NOTIF_FLAG_CONTINUE) only since 5.5: before, every
		// listen would wait for an answer that cannot be given.
		return -1, errors.New("seccomp cannot let a notified call continue before Linux 5.5")
	}
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: arch},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_LISTEN},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	fd, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// watchListens lets each listen call reported on fd through and says so
// on listens (without blocking: one pending signal is enough). It
// returns once no process is left under the filter. It must keep
// answering for the instance's life: an unanswered listen would block.
func watchListens(fd int, listens chan<- struct{}) {
	defer unix.Close(fd)
	for {
		var n seccompNotif // the kernel wants it zeroed
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n)))
		switch errno {
		case 0:
		case unix.EINTR, unix.ENOENT:
			// ENOENT: the caller died before it was received.
			continue
		default:
			return
		}
		resp := seccompNotifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		for {
			_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
			if errno != unix.EINTR {
				break
			}
		}
		select {
		case listens <- struct{}{}:
		default:
		}
	}
}

// dialWhenListening dials addr until it answers or wait has passed. With
// listens (see notifyListens), it dials again just after each listen,
// and otherwise at listenPollFallback; without, at intervals growing
// from 50 µs to 1 ms.
func dialWhenListening(addr string, wait time.Duration, listens <-chan struct{}) (net.Conn, error) {
	deadline := time.Now().Add(wait)
	delay, maxDelay := 50*time.Microsecond, time.Millisecond
	if listens != nil {
		delay, maxDelay = listenPollFallback, listenPollFallback
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil || !time.Now().Before(deadline) {
			return c, err
		}
		t.Reset(min(delay, time.Until(deadline)))
		select {
		case <-listens:
			// A listen let through a moment ago: retry soon, then less
			// often (it may have been another port).
			t.Stop()
			time.Sleep(listenSettle)
			delay = 2 * listenSettle
		case <-t.C:
			delay = min(2*delay, maxDelay)
		}
	}
}

// kernelAtLeast reports whether the running kernel's release is at least
// major.minor.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	maj, mnr, ok := parseRelease(unix.ByteSliceToString(u.Release[:]))
	return ok && (maj > major || maj == major && mnr >= minor)
}

// parseRelease reads "MAJOR.MINOR" from the start of a kernel release
// such as "6.18.44-fc-v782".
func parseRelease(r string) (major, minor int, ok bool) {
	a, rest, found := strings.Cut(r, ".")
	if !found {
		return 0, 0, false
	}
	i := 0
	for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
		i++
	}
	maj, err1 := strconv.Atoi(a)
	mnr, err2 := strconv.Atoi(rest[:i])
	return maj, mnr, err1 == nil && err2 == nil
}
