package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust"
)

// httpInstance is a process that serves HTTP on $PORT. It is safe for
// concurrent Invoke: each request is its own HTTP request, over a
// transport of the instance's own.
type httpInstance struct {
	*instance
	addr    string // where the function listens, in its own namespace if it has one
	bridged bool   // reached through the helper (see bridge_linux.go)
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	tr      *http.Transport
	hc      *http.Client

	// The connection that told the function is ready serves the first
	// request, if that comes at once: a fresh dial would cost the cold
	// start another round trip through the helper.
	firstMu sync.Mutex
	first   net.Conn
	firstAt time.Time
}

// firstConnFresh is how long the readiness probe's connection is kept for
// the first request. A function could close a connection that sent
// nothing; within this window after it accepted one, it has no reason to.
const firstConnFresh = 100 * time.Millisecond

// takeFirst returns the readiness probe's connection if it is still fresh.
func (hi *httpInstance) takeFirst() net.Conn {
	hi.firstMu.Lock()
	defer hi.firstMu.Unlock()
	c := hi.first
	hi.first = nil
	if c != nil && time.Since(hi.firstAt) > firstConnFresh {
		c.Close()
		return nil
	}
	return c
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (m *module) newHTTP(ctx context.Context, in *instance) (*httpInstance, error) {
	port, bridged := nsHTTPPort, m.ownNet()
	if !bridged {
		var err error
		if port, err = freePort(); err != nil {
			return nil, fmt.Errorf("pick a port: %w", err)
		}
	}
	hi := &httpInstance{instance: in, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), bridged: bridged}
	// In the host's network any local process may listen on the port
	// first: gust talks only to a listener of the function's own user.
	dial := ownedDial((&net.Dialer{Timeout: 5 * time.Second}).DialContext, m.peerUID())
	if bridged {
		// The address is the one inside the instance's namespace; the
		// connection goes through its helper.
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return hi.p.dialBridge(ctx)
		}
	}
	hi.dial = dial
	hi.tr = &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if c := hi.takeFirst(); c != nil {
				return c, nil
			}
			return dial(ctx, network, addr)
		},
		MaxIdleConns:          m.spec.PerInstanceConcurrency,
		MaxIdleConnsPerHost:   m.spec.PerInstanceConcurrency,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 0, // the invocation's context bounds it
	}
	hi.hc = &http.Client{
		Transport: hi.tr,
		// A redirect is the function's answer, for the caller to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	in.cleanup = append(in.cleanup, hi.tr.CloseIdleConnections, func() {
		if c := hi.takeFirst(); c != nil {
			c.Close()
		}
	})
	bridgePort := 0
	if bridged {
		bridgePort = port
	}
	if err := in.start(ctx, map[string]string{"PORT": strconv.Itoa(port)}, bridgePort, 0); err != nil {
		return nil, err
	}
	if err := hi.waitListening(ctx, port); err != nil {
		return nil, err
	}
	return hi, nil
}

// startProbeWait is how long a readiness probe (msgWaitConn) waits in
// the helper for the function to listen before it answers "not yet".
// Waiting here, next to the function, replaces gust polling through the
// control socket: a refused connect inside the namespace costs a system
// call, a round trip to gust costs two wake-ups of busy processes.
const startProbeWait = time.Second

// waitListening waits until the function accepts a connection. Through
// the bridge, each probe waits in the helper (startProbeWait), next to
// the function; in the host's network, gust polls at short intervals (a
// refused connect to 127.0.0.1 costs one system call).
func (hi *httpInstance) waitListening(ctx context.Context, port int) error {
	limit := hi.m.d.cfg.StartTimeout
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	delay := 50 * time.Microsecond
	var lastOwnerErr error // another user's process holds the port
	for {
		dctx, cancel := context.WithTimeout(ctx, startProbeWait+time.Second)
		var (
			c   net.Conn
			err error
		)
		if hi.bridged {
			c, err = hi.p.probeBridge(dctx)
		} else {
			c, err = hi.dial(dctx, "tcp", hi.addr)
		}
		cancel()
		if errors.Is(err, errPortOwner) {
			lastOwnerErr = err
		}
		if err == nil {
			hi.firstMu.Lock()
			hi.first, hi.firstAt = c, time.Now()
			hi.firstMu.Unlock()
			return nil
		}
		wait := delay
		if hi.bridged && errors.Is(err, errNotListening) {
			// The helper has waited already.
			wait = 0
		}
		select {
		case <-ctx.Done():
			return hi.ctxError(ctx, "start")
		case <-hi.p.exited:
			return hi.exitedError("during start")
		case <-deadline.C:
			hi.p.kill()
			if lastOwnerErr != nil {
				return gust.Errorf(gust.EFUNCTION, "function did not listen on $PORT (%d) within %s: %v", port, limit, lastOwnerErr)
			}
			return gust.Errorf(gust.EFUNCTION, "function did not listen on $PORT (%d) within %s", port, limit)
		case <-time.After(wait):
		}
		delay = min(2*delay, time.Millisecond)
	}
}

// errNotListening is a bridged dial that reached the helper while the
// function did not accept on its port (yet).
var errNotListening = errors.New("function does not accept connections on $PORT")

// hopHeaders are connection-level headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade"}

func (hi *httpInstance) Invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	defer hi.coldStartOver()
	hi.out.begin(req.ID)
	defer hi.out.end(req.ID)
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hr, err := http.NewRequestWithContext(ctx, method, "http://"+hi.addr+"/", bytes.NewReader(req.Body))
	if err != nil {
		return nil, gust.WrapError(gust.EINVALID, err, "cannot build the request to the function")
	}
	setTarget(hr.URL, req)
	for k, vs := range req.Header {
		hr.Header[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		hr.Header.Del(h)
	}
	if host := req.Header.Get("Host"); host != "" {
		hr.Host = host
	}
	if req.ID != "" && hr.Header.Get("X-Gust-Invocation-Id") == "" {
		hr.Header.Set("X-Gust-Invocation-Id", req.ID)
	}
	resp, err := hi.hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, hi.ctxError(ctx, "")
		}
		return nil, hi.exitedError("while handling the request")
	}
	defer resp.Body.Close()
	limit := hi.m.d.cfg.MaxResponseBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, hi.ctxError(ctx, "")
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, hi.exitedError("while sending its response")
		}
		return nil, hi.exitedError("while sending its response")
	}
	if int64(len(body)) > limit {
		hi.p.kill()
		return nil, gust.Errorf(gust.EFUNCTION, "function response is larger than %d bytes", limit)
	}
	h := resp.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Del("Content-Length")
	return &gust.Response{Status: resp.StatusCode, Header: h, Body: body}, nil
}

// setTarget sets the path and query the function is asked for. The
// path is set, not parsed: req.Path is decoded (see gust.Request), and a
// '%', '?' or '#' in it is part of the path, which url.URL escapes again
// on the wire. The query goes as the client sent it.
func setTarget(u *url.URL, req *gust.Request) {
	p := req.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	u.Path, u.RawPath, u.RawQuery = p, req.RawPath, req.Query // RawPath keeps a %2F: url.URL uses it if it decodes to p
}

func (hi *httpInstance) Close(ctx context.Context) error {
	hi.stop()
	return nil
}
