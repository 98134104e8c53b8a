package abi

import (
	"fmt"
)

// handler is the function registered by sdk.Handle or lean.HandleFunc.
var handler func(*Request) *Response

// SetHandler registers h as the function's handler, replacing any earlier
// one. Call it from init.
func SetHandler(h func(*Request) *Response) { handler = h }

// Serve decodes an encoded request, runs the registered handler and appends
// the encoded response to dst. It is what gust_handle does, callable on the
// host so tests need no WebAssembly.
func Serve(dst, req []byte) []byte {
	r, err := DecodeRequest(req)
	if err != nil {
		return AppendResponse(dst, textResponse(500, fmt.Sprintf("gust sdk: %v (host and SDK disagree on ABI version %d?)\n", err, Version)))
	}
	h := handler
	if h == nil {
		return AppendResponse(dst, textResponse(500, "gust sdk: no handler registered; call sdk.Handle or lean.HandleFunc from init\n"))
	}
	return AppendResponse(dst, h(r))
}

func textResponse(status int, s string) *Response {
	return &Response{
		Status: status,
		Header: Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:   []byte(s),
	}
}
