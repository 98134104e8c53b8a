package process

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// The owner of the other end of a loopback connection is found, both
// ways gust can ask, for a socket of gust's own user and of another.
func TestTCPSocketUID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(conn net.Conn, want int) {
		t.Helper()
		local, remote := conn.RemoteAddr().(*net.TCPAddr), conn.LocalAddr().(*net.TCPAddr)
		if uid, err := sockDiagUID(local, remote); err != nil || uid != want {
			t.Errorf("sock_diag: uid %d, %v; want %d", uid, err, want)
		}
		if uid, err := procNetUID(local, remote); err != nil || uid != want {
			t.Errorf("/proc/net/tcp: uid %d, %v; want %d", uid, err, want)
		}
		if uid, err := connPeerUID(conn); err != nil || uid != want {
			t.Errorf("connPeerUID: uid %d, %v; want %d", uid, err, want)
		}
	}
	check(c, os.Getuid())
	check(s, os.Getuid())

	// Nothing at the other end any more.
	gone := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	if _, err := tcpSocketUID(gone, c.LocalAddr().(*net.TCPAddr)); err != errNoSocket {
		t.Errorf("no socket: %v", err)
	}

	if os.Getuid() != 0 {
		return
	}
	py := findInterpreter("", "python3") // one every user may run
	if py == "" {
		t.Skip("no python3 to connect as another user")
	}
	// Another user's process connects and waits for its stdin to close.
	cmd := exec.Command(py, "-c", "import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1]))); print('ok', flush=True); sys.stdin.read()",
		strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ok\n" {
		t.Fatalf("python: %q %v", line, err)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	o, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	check(o, 65534)
}

// A function with egress serves its Runtime API on the host's loopback:
// another local process (this test, as root) is refused, and cannot take
// the function's events or answer for it; the function itself works.
func TestRuntimeAPIRefusesOtherUsers(t *testing.T) {
	bin := goBuild(t, "../examples/lambda-go", ".")
	d := newDriver(t)
	if !d.sb.ownUser {
		t.Skip("functions run as gust's own user here: no other user to refuse")
	}
	m := load(t, d, "victim", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolLambda, MemoryMB: 64, Egress: true},
		makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: bin}), nil)
	in := start(t, m)
	addr := in.(*lambdaInstance).api.ln.Addr().String()
	client := &http.Client{Timeout: 30 * time.Second}
	for _, tc := range []struct{ method, path string }{
		{"GET", apiNext},
		{"POST", "/2018-06-01/runtime/invocation/req-1/response"},
	} {
		// Asked aside: a /next that is not refused would wait for an
		// event, and the event would be the attacker's.
		got := make(chan string, 1)
		go func() {
			req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader(`{"statusCode":200,"body":"forged"}`))
			resp, err := client.Do(req)
			if err != nil {
				got <- "" // closed: refused too
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- fmt.Sprintf("%d %s", resp.StatusCode, body)
		}()
		select {
		case s := <-got:
			if s != "" && !strings.HasPrefix(s, "403 ") {
				t.Errorf("%s %s from another user: %q, want 403", tc.method, tc.path, s)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s %s from another user was not refused", tc.method, tc.path)
		}
	}
	resp := mustInvoke(t, in, &gust.Request{ID: "req-1", Method: "POST", Path: "/hello", Header: http.Header{"Authorization": {"Bearer user-secret"}}, Body: []byte("card=4111")})
	if resp.Status != 200 || !strings.Contains(string(resp.Body), `"body":"card=4111"`) {
		t.Errorf("the function's own call: %d %s", resp.Status, resp.Body)
	}
}

// An http function with egress is proxied to over the host's loopback;
// a listener of another user on its port is not the function.
func TestHTTPOwnedListener(t *testing.T) {
	d := newDriver(t)
	if !d.sb.ownUser {
		t.Skip("functions run as gust's own user here")
	}
	m := load(t, d, "egress-http", gust.Spec{Runtime: gust.RuntimeProcess, MemoryMB: 64, Egress: true},
		makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: goBuild(t, "", "./testdata/httpfn")}), nil)
	in := start(t, m)
	if resp := mustInvoke(t, in, &gust.Request{Path: "/echo"}); resp.Status != 201 {
		t.Errorf("status %d: %s", resp.Status, resp.Body)
	}

	// gust's own listener (root) stands in for another process that
	// grabbed a function's port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := ownedDial((&net.Dialer{}).DialContext, m.(*module).uid)
	if _, err := dial(t.Context(), "tcp", ln.Addr().String()); !errors.Is(err, errPortOwner) {
		t.Errorf("dial to another user's listener: %v, want errPortOwner", err)
	}
	if c, err := ownedDial((&net.Dialer{}).DialContext, os.Geteuid())(t.Context(), "tcp", ln.Addr().String()); err != nil {
		t.Errorf("dial to its own user's listener: %v", err)
	} else {
		c.Close()
	}
}

// What asking who owns a connection's other end costs, per connection.
func BenchmarkConnPeerUID(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	local, remote := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
	b.Run("sock_diag", func(b *testing.B) {
		for b.Loop() {
			if _, err := sockDiagUID(local, remote); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proc_net_tcp", func(b *testing.B) {
		for b.Loop() {
			if _, err := procNetUID(local, remote); err != nil {
				b.Fatal(err)
			}
		}
	})
}
