package async

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/gustfaas/gust"
)

// A callback URL comes from whoever may invoke the function, and gust
// POSTs to it from inside the machine: pointed at 127.0.0.1, a private
// network or a cloud metadata address, it would reach services that are
// not meant to be reachable from outside (server-side request forgery).
// So callbacks go only to public addresses unless the operator allows
// private ones (Config.CallbackAllowPrivate, gust serve
// --callback-allow-private). The address is checked where the connection
// is made, after name resolution, so a name that resolves to a private
// address (or is made to, between a check and the connect) is refused too.

// cgnat is the shared address space of RFC 6598, private in practice.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// IPv6 prefixes that carry an IPv4 address a gateway may route to: NAT64
// (RFC 6052; its local-use prefix of RFC 8215 is private outright), 6to4
// (RFC 3056) and the deprecated IPv4-compatible addresses.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	v4compat   = netip.MustParsePrefix("::/96")
)

// nonPublic says why ip is not a public unicast address, or "" if it is.
// An IPv6 address that embeds an IPv4 one is judged by that one.
func nonPublic(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64Local.Contains(ip):
			return "a private"
		case nat64.Contains(ip), v4compat.Contains(ip) && !ip.IsLoopback() && !ip.IsUnspecified():
			return nonPublic(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return nonPublic(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	switch {
	case !ip.IsValid():
		return "an invalid"
	case ip.IsLoopback():
		return "a loopback"
	case ip.IsUnspecified():
		return "an unspecified"
	case ip.IsLinkLocalUnicast():
		return "a link-local"
	case ip.IsPrivate(), cgnat.Contains(ip):
		return "a private"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast(), ip.IsLinkLocalMulticast():
		return "a multicast"
	}
	return ""
}

// errPrivateCallback is the refusal of a callback to a non-public address.
func errPrivateCallback(ip, kind string) error {
	return gust.Errorf(gust.EINVALID, "%s %s is %s address: callbacks go only to public addresses (gust serve --callback-allow-private allows others)", HeaderCallbackURL, ip, kind)
}

// checkCallbackHost refuses, at accept, a callback URL whose host is a
// non-public IP literal; a host name is checked when the callback connects.
func (a *Async) checkCallbackHost(raw string) error {
	if a.cfg.CallbackAllowPrivate {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil // ValidateCallbackURL has refused it already
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return nil
	}
	if kind := nonPublic(ip); kind != "" {
		return errPrivateCallback(ip.String(), kind)
	}
	return nil
}

// newCallbackClient is the default Config.CallbackClient: a 10 s timeout,
// redirects not followed (the URL the caller named is the only one posted
// to), no proxy from the environment (a proxy would connect for us, past
// the address check), and, unless allowPrivate, connections only to
// public addresses.
func newCallbackClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("callback address %q: %w", address, err)
			}
			if kind := nonPublic(ap.Addr()); kind != "" {
				return errPrivateCallback(ap.Addr().String(), kind)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        32,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
