package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Defaults of the outbound HTTP limits (see Config).
const (
	DefaultMaxRequests      = 20
	DefaultMaxResponseBytes = 8 << 20
	maxRedirects            = 5
)

// hostMatcher decides whether a host is in a function's allowedHosts.
type hostMatcher struct {
	exact    map[string]bool
	suffixes []string // ".example.com" for "*.example.com"
}

func newHostMatcher(hosts []string) hostMatcher {
	m := hostMatcher{exact: map[string]bool{}}
	for _, h := range hosts {
		h = strings.ToLower(h)
		if s, ok := strings.CutPrefix(h, "*"); ok {
			m.suffixes = append(m.suffixes, s)
		} else {
			m.exact[h] = true
		}
	}
	return m
}

// check returns nil if host (a URL's Hostname()) may be reached, or an
// error saying why not. IP literals are refused whatever the list says:
// the list names hosts, and an address would bypass it.
func (m hostMatcher) check(host string) error {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "" {
		return errors.New("the URL has no host")
	}
	if net.ParseIP(h) != nil || strings.Contains(h, ":") || looksNumeric(h) {
		return fmt.Errorf("host %s is an IP address: only the hosts in allowedHosts are reachable, by name", host)
	}
	if m.exact[h] {
		return nil
	}
	for _, s := range m.suffixes {
		if strings.HasSuffix(h, s) && len(h) > len(s) {
			return nil
		}
	}
	return fmt.Errorf("host %s is not in the function's allowedHosts", host)
}

// looksNumeric reports whether h's last label starts with a digit, as no
// top-level domain does, but "127.1" and "0x7f000001" do.
func looksNumeric(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	return last != "" && last[0] >= '0' && last[0] <= '9'
}

// deniedError is a request refused by policy, as opposed to one that failed.
type deniedError struct{ msg string }

func (e *deniedError) Error() string { return e.msg }

// newClient returns the HTTP client of a module's outbound requests: its
// own connection pool, no proxy from the host's environment, every dial
// and redirect checked against the module's hosts.
func newClient(hosts hostMatcher, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	if dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: refuseLocal}
		dial = d.DialContext
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// The request's URL was checked; this catches anything that
			// reaches the dialer another way.
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if err := hosts.check(host); err != nil {
				return nil, &deniedError{err.Error()}
			}
			return dial(ctx, network, addr)
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       60 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return &deniedError{fmt.Sprintf("stopped after %d redirects", maxRedirects)}
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return &deniedError{fmt.Sprintf("redirect to %s refused: scheme %q", redact(req.URL), req.URL.Scheme)}
			}
			if err := hosts.check(req.URL.Hostname()); err != nil {
				return &deniedError{fmt.Sprintf("redirect to %s refused: %v", redact(req.URL), err)}
			}
			return nil
		},
	}
}

// redact drops a URL's user info and query, which may carry credentials,
// from what is logged.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

// hostHTTPRequest is http_request(req_ptr, req_len): the request is
// method url header-count (name value)* body; the result is the response,
// status header-count (name value)* body, as gust_handle returns it.
func hostHTTPRequest(ctx context.Context, c *call, mod api.Module, stack []uint64) (uint32, []byte) {
	raw, ok := guestBytes(mod, stack[0], stack[1])
	if !ok {
		return resultInvalid, errPayload("http_request: request outside the guest's memory")
	}
	cp := c.m.caps
	d := decoder{b: raw}
	method := string(d.bytes())
	rawURL := string(d.bytes())
	n := d.u32()
	if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
		return resultInvalid, errPayload("http_request: header count %d exceeds the request", n)
	}
	header := make(http.Header, n)
	for i := uint32(0); i < n && d.err == nil; i++ {
		k, v := d.bytes(), d.bytes()
		header.Add(string(k), string(v))
	}
	body := d.bytes()
	if d.err != nil {
		return resultInvalid, errPayload("http_request: malformed request: %v", d.err)
	}
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return resultInvalid, errPayload("http_request: invalid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return resultInvalid, errPayload("http_request: scheme %q: want http or https", u.Scheme)
	}
	if cp.client == nil {
		c.event("outbound request to %s denied: the function declares no allowedHosts", redact(u))
		return resultDenied, errPayload("outbound HTTP to %s denied: the function declares no allowedHosts", u.Hostname())
	}
	if err := cp.hosts.check(u.Hostname()); err != nil {
		c.event("outbound request to %s denied: %v", redact(u), err)
		return resultDenied, errPayload("outbound HTTP denied: %v", err)
	}
	if c.requests >= cp.maxRequests {
		c.event("outbound request to %s denied: over the limit of %d requests per invocation", redact(u), cp.maxRequests)
		return resultLimit, errPayload("outbound HTTP denied: over the limit of %d requests per invocation", cp.maxRequests)
	}
	c.requests++
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return resultInvalid, errPayload("http_request: %v", err)
	}
	// Host is the URL's: a Host header naming another site on the same
	// server would reach past the list.
	header.Del("Host")
	req.Header = header
	resp, err := cp.client.Do(req)
	if err != nil {
		var denied *deniedError
		if errors.As(err, &denied) {
			c.event("outbound request to %s denied: %s", redact(u), denied.msg)
			return resultDenied, errPayload("outbound HTTP denied: %s", denied.msg)
		}
		if ctx.Err() != nil {
			return resultFailed, errPayload("outbound HTTP to %s: the invocation's deadline passed", u.Hostname())
		}
		return resultFailed, errPayload("outbound HTTP to %s failed: %v", u.Hostname(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, cp.maxResponseBytes+1))
	if err != nil {
		return resultFailed, errPayload("outbound HTTP to %s: reading the response: %v", u.Hostname(), unwrapURLError(err))
	}
	if int64(len(respBody)) > cp.maxResponseBytes {
		c.event("outbound response from %s refused: over %d bytes", redact(u), cp.maxResponseBytes)
		return resultLimit, errPayload("outbound HTTP to %s: response over the limit of %d bytes", u.Hostname(), cp.maxResponseBytes)
	}
	return resultOK, encodeHTTPResponse(resp, respBody)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func encodeHTTPResponse(resp *http.Response, body []byte) []byte {
	n := 4 + 4 + 4 + len(body)
	count := 0
	for k, vs := range resp.Header {
		for _, v := range vs {
			n += 8 + len(k) + len(v)
			count++
		}
	}
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b, uint32(resp.StatusCode))
	binary.LittleEndian.PutUint32(b[4:], uint32(count))
	rest := b[8:]
	for k, vs := range resp.Header {
		for _, v := range vs {
			rest = putBytes(rest, k)
			rest = putBytes(rest, v)
		}
	}
	putBytes(rest, body)
	return b
}

// refuseLocal stops a connection to this machine or to link-local
// addresses (cloud metadata services live at 169.254.169.254), whatever
// name led there: an allowed host whose DNS answers 127.0.0.1 must not
// reach gust's own API or NATS. It checks the address being dialed, so a
// name that resolves differently on a second lookup gains nothing.
// Private networks (10/8 ...) stay reachable: internal APIs are a
// legitimate use of an allowed host.
func refuseLocal(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address", address)
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
		return &deniedError{fmt.Sprintf("the host resolves to %s, a local address", ip)}
	}
	return nil
}
