package process

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Who owns the other end of a TCP connection on 127.0.0.1? A function
// with egress (or any function where network namespaces are unavailable)
// reaches its Runtime API, and gust reaches its $PORT, over the host's
// loopback, where any local process can connect or listen too. The kernel
// records the user that created each socket; gust asks it for the socket
// at the other end of a connection, once per connection (the runtime
// clients and gust's transport keep their connections alive).

// errNoSocket is a lookup that found no such socket: the other end has
// closed already.
var errNoSocket = errors.New("no such socket")

// tcpSocketUID returns the uid that created the TCP socket whose local
// address is local and whose remote address is remote, in gust's network
// namespace: for a connection gust holds, pass its RemoteAddr as local and
// its LocalAddr as remote. It asks the kernel with one sock_diag request,
// and reads /proc/net/tcp where sock_diag is not available.
func tcpSocketUID(local, remote *net.TCPAddr) (int, error) {
	uid, err := sockDiagUID(local, remote)
	if err == nil || errors.Is(err, errNoSocket) {
		return uid, err
	}
	uid, perr := procNetUID(local, remote)
	if perr != nil {
		return -1, fmt.Errorf("sock_diag: %v; /proc/net/tcp: %w", err, perr)
	}
	return uid, nil
}

// connPeerUID returns the uid of the process that owns the other end of
// a TCP connection gust holds.
func connPeerUID(c net.Conn) (int, error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return -1, fmt.Errorf("not a TCP connection: %s", c.LocalAddr().Network())
	}
	return tcpSocketUID(remote, local)
}

// Sizes and offsets of the kernel's sock_diag structures
// (linux/inet_diag.h): inet_diag_req_v2 is 56 bytes, and the uid of an
// inet_diag_msg is at byte 64.
const (
	nlmsgHdrLen      = 16
	inetDiagReqLen   = 56
	inetDiagUIDOff   = 64
	inetDiagMsgMin   = 72
	inetDiagNoCookie = 0xffffffff
)

func sockDiagUID(local, remote *net.TCPAddr) (int, error) {
	family := unix.AF_INET6
	if local.IP.To4() != nil && remote.IP.To4() != nil {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	req := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence
	b := req[nlmsgHdrLen:]
	b[0], b[1] = byte(family), unix.IPPROTO_TCP
	ne.PutUint32(b[4:], 0xffffffff) // any state
	id := b[8:]                     // inet_diag_sockid
	binary.BigEndian.PutUint16(id[0:], uint16(local.Port))
	binary.BigEndian.PutUint16(id[2:], uint16(remote.Port))
	putDiagAddr(id[4:20], local.IP, family)
	putDiagAddr(id[20:36], remote.IP, family)
	ne.PutUint32(id[36:], 0) // any interface
	ne.PutUint32(id[40:], inetDiagNoCookie)
	ne.PutUint32(id[44:], inetDiagNoCookie)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return -1, fmt.Errorf("sock_diag request: %w", err)
	}
	buf := make([]byte, 4096)
	// The answer is one message: the socket, or an error. Bounded: a
	// stray message is skipped at most a few times.
	for range 4 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return -1, fmt.Errorf("sock_diag answer: %w", err)
		}
		msg := buf[:n]
		if len(msg) < nlmsgHdrLen {
			return -1, errors.New("sock_diag answer too short")
		}
		switch typ := ne.Uint16(msg[4:]); typ {
		case unix.NLMSG_ERROR:
			if len(msg) < nlmsgHdrLen+4 {
				return -1, errors.New("sock_diag error too short")
			}
			errno := -int32(ne.Uint32(msg[nlmsgHdrLen:]))
			if errno == int32(unix.ENOENT) {
				return -1, errNoSocket
			}
			return -1, fmt.Errorf("sock_diag: %w", unix.Errno(errno))
		case unix.SOCK_DIAG_BY_FAMILY:
			body := msg[nlmsgHdrLen:]
			if len(body) < inetDiagMsgMin {
				return -1, errors.New("sock_diag answer too short")
			}
			return int(ne.Uint32(body[inetDiagUIDOff:])), nil
		}
	}
	return -1, errors.New("sock_diag: no answer")
}

// putDiagAddr writes an address as inet_diag_sockid holds it: four
// 32-bit words in network order, an IPv4 address in the first.
func putDiagAddr(dst []byte, ip net.IP, family int) {
	if family == unix.AF_INET {
		copy(dst, ip.To4())
		return
	}
	copy(dst, ip.To16())
}

// procNetUID finds the socket in /proc/net/tcp or tcp6, which list every
// TCP socket of the network namespace with the uid that created it.
func procNetUID(local, remote *net.TCPAddr) (int, error) {
	file, want4 := "/proc/net/tcp6", false
	if local.IP.To4() != nil && remote.IP.To4() != nil {
		file, want4 = "/proc/net/tcp", true
	}
	l, r := procNetAddr(local, want4), procNetAddr(remote, want4)
	f, err := os.Open(file)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1] != l || fields[2] != r {
			continue
		}
		uid, err := strconv.Atoi(fields[7])
		if err != nil {
			return -1, fmt.Errorf("%s: uid %q", file, fields[7])
		}
		return uid, nil
	}
	if err := sc.Err(); err != nil {
		return -1, err
	}
	return -1, errNoSocket
}

// procNetAddr writes an address as /proc/net/tcp does: each 32-bit word
// of the address in network order printed as a host-order number, then
// the port.
func procNetAddr(a *net.TCPAddr, v4 bool) string {
	var sb strings.Builder
	ip := a.IP.To16()
	if v4 {
		ip = a.IP.To4()
	}
	for i := 0; i+4 <= len(ip); i += 4 {
		fmt.Fprintf(&sb, "%08X", binary.NativeEndian.Uint32(ip[i:]))
	}
	fmt.Fprintf(&sb, ":%04X", a.Port)
	return sb.String()
}
