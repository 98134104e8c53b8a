package sdk

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gustfaas/gust/sdk/internal/host"
)

// Errors of the host's capabilities; match them with errors.Is.
var (
	// ErrNotFound: a KV key does not exist.
	ErrNotFound = host.ErrNotFound
	// ErrDenied: the manifest does not grant what was asked (no kv: true;
	// a host not in allowedHosts, an IP address, or a redirect to such).
	ErrDenied = host.ErrDenied
	// ErrLimit: a limit was hit (outbound requests per invocation,
	// response size, KV value size).
	ErrLimit = host.ErrLimit
	// ErrUnavailable: the code is not running inside gust.
	ErrUnavailable = host.ErrUnavailable
)

// KV is the function's own key-value store; its zero value is ready:
//
//	var store sdk.KV
//	n, _ := store.Get("visits") // errors.Is(err, sdk.ErrNotFound) when unset
//	_ = store.Set("visits", []byte("1"))
//	keys, _ := store.List("user.")
//
// The function must declare `kv: true`, or every call fails with
// ErrDenied. Each function has a store of its own, which `gust rm`
// removes. Keys are 1 to 512 characters of letters, digits and - / _ = .
// (not starting or ending with '.'), values at most 1 MiB; List returns
// at most 1000 keys, sorted.
type KV = host.KV

// Transport is an http.RoundTripper that sends requests through gust, to
// the hosts the function's manifest lists under allowedHosts and nowhere
// else: a guest has no sockets of its own.
//
//	req, _ := http.NewRequest("GET", "https://api.example.com/v1/rates", nil)
//	resp, err := sdk.Do(req)
//
// gust follows redirects itself, only to listed hosts, and answers the
// final response; it refuses IP addresses, more than 20 requests per
// invocation, and response bodies over 8 MiB, each with an error that
// matches ErrDenied or ErrLimit. A request is bounded by the
// invocation's deadline, not by its context, which the guest cannot
// cancel mid-call. The response body is read whole before RoundTrip
// returns.
type Transport struct{}

// Client is an http.Client over Transport, for code written against
// *http.Client. It costs: any use of http.Client links net/http's own
// transport and crypto/tls into the guest, about 5 MB more .wasm (10 MB
// instead of 5 for a small function) and a slower cold start, though it
// never sends through them. Do (or Transport's RoundTrip) does not.
var Client = &http.Client{Transport: Transport{}}

// Do sends req through gust (see Transport) and returns the response,
// whatever its status, as Transport's RoundTrip does.
func Do(req *http.Request) (*http.Response, error) { return Transport{}.RoundTrip(req) }

// RoundTrip implements http.RoundTripper.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("gust: reading the request body: %w", err)
		}
		body = b
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if req.Host != "" && req.Host != req.URL.Host {
		return nil, fmt.Errorf("gust: %w: a Host other than the URL's (%q)", ErrDenied, req.Host)
	}
	status, respHdr, respBody, err := host.Fetch(method, req.URL.String(), req.Header, body)
	if err != nil {
		return nil, err
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header(respHdr),
		Body:          io.NopCloser(bytes.NewReader(respBody)),
		ContentLength: int64(len(respBody)),
		Request:       req,
	}, nil
}
