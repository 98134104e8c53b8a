package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gustfaas/gust"
)

// httpInstance is a process that serves HTTP on $PORT. It is safe for
// concurrent Invoke: each request is its own HTTP request, over a
// transport of the instance's own.
type httpInstance struct {
	*instance
	addr string // where the function listens, in its own namespace if it has one
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	tr   *http.Transport
	hc   *http.Client
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
	hi := &httpInstance{instance: in, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	dial := (&net.Dialer{Timeout: 5 * time.Second}).DialContext
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
		Proxy:                 nil,
		DialContext:           dial,
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
	in.cleanup = append(in.cleanup, hi.tr.CloseIdleConnections)
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

// waitListening polls until the function accepts a connection.
func (hi *httpInstance) waitListening(ctx context.Context, port int) error {
	limit := hi.m.d.cfg.StartTimeout
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	// Short first delays: a Go function listens within a few ms, and
	// each probe costs little.
	delay := 250 * time.Microsecond
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := hi.dial(dctx, "tcp", hi.addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return hi.ctxError(ctx, "start")
		case <-hi.p.exited:
			return hi.exitedError("during start")
		case <-deadline.C:
			hi.p.kill()
			return gust.Errorf(gust.EFUNCTION, "function did not listen on $PORT (%d) within %s", port, limit)
		case <-time.After(delay):
		}
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

// hopHeaders are connection-level headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade"}

func (hi *httpInstance) Invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	hi.out.begin(req.ID)
	defer hi.out.end(req.ID)
	target := "http://" + hi.addr + req.Path
	if !strings.HasPrefix(req.Path, "/") {
		target = "http://" + hi.addr + "/" + req.Path
	}
	if req.Query != "" {
		target += "?" + req.Query
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hr, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(req.Body))
	if err != nil {
		return nil, gust.WrapError(gust.EINVALID, err, "cannot build the request to the function")
	}
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

func (hi *httpInstance) Close(ctx context.Context) error {
	hi.stop()
	return nil
}
