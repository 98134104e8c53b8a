// Package lean is gust's Go SDK without net/http: a handler takes a
// *Request and returns a *Response. Importing net/http grows a guest from
// about 1.9 MB to 5.4 MB and doubles its cold start; a function that does
// not need http.Handler compatibility starts faster and uses less memory on
// this API. Both APIs speak the same reactor ABI (see package sdk).
//
//	func init() {
//		lean.HandleFunc(func(r *lean.Request) *lean.Response {
//			return lean.Text(200, "Hello, "+r.QueryValue("name")+"!\n")
//		})
//	}
//
//	func main() {}
//
// This package must not import net/http, directly or not.
package lean

import (
	"github.com/gustfaas/gust/sdk/internal/abi"
	"github.com/gustfaas/gust/sdk/internal/host"
)

// Request is one HTTP request to the function. Path is the part after
// /fn/NAME, decoded; RawPath is the same as the client escaped it when that
// differs from Path's default escaping ("/a%2Fb" for "/a/b"), else "";
// Query is the raw query without '?'. Header keys are canonical
// ("Content-Type"). The SDK reuses the Request, its Header map and its
// Body's memory for the next call: keep none of them after the handler
// returns (its strings may be kept).
type Request = abi.Request

// Response is the function's answer. A zero Status means 200; a nil
// *Response is an empty 200.
type Response = abi.Response

// Header maps canonical header names to values, like http.Header.
type Header = abi.Header

// HandleFunc registers f as the function's handler, replacing any earlier
// one. Call it from init.
func HandleFunc(f func(*Request) *Response) { abi.SetHandler(f) }

// Text returns a text/plain response.
//
// During a call, Text and Bytes hand out responses that the SDK reuses at
// the next call (a warm call then allocates nothing for its response): return
// the response, do not keep it for a later call. A response built in init,
// or with &Response{...}, is the function's own and may be returned on
// every call.
func Text(status int, body string) *Response {
	return abi.TextResponse(status, "text/plain; charset=utf-8", body)
}

// Bytes returns a response with the given content type. Body is body
// itself, not a copy. See Text for how long the response may be kept.
func Bytes(status int, contentType string, body []byte) *Response {
	r := abi.NewResponse(status, contentType)
	r.Body = body
	return r
}

// KV is the function's own key-value store (see sdk.KV); its zero value
// is ready. The function must declare `kv: true`.
type KV = host.KV

// Fetch sends an HTTP request through gust to a host the function's
// manifest lists under allowedHosts, and returns the response, whatever
// its status; header may be nil. The rules are sdk.Transport's: no IP
// addresses, redirects only to listed hosts, at most 20 requests per
// invocation, response bodies up to 8 MiB, the invocation's deadline.
// Refusals are errors that say why.
//
//	resp, err := lean.Fetch("GET", "https://api.example.com/v1/rates", nil, nil)
func Fetch(method, url string, header Header, body []byte) (*Response, error) {
	status, h, b, err := host.Fetch(method, url, header, body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: status, Header: Header(h), Body: b}, nil
}
