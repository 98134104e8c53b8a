package abi

import (
	"fmt"
)

// handler is the function registered by sdk.Handle or lean.HandleFunc.
var handler func(*Request) *Response

// SetHandler registers h as the function's handler, replacing any earlier
// one. Call it from init.
func SetHandler(h func(*Request) *Response) {
	handler = h
	dec.liftHost = false
}

// SetHostLiftingHandler is SetHandler for a handler that wants the Host
// header apart, as net/http keeps it in Request.Host: Serve leaves Host out
// of the request's Header and LiftedHost returns its first value. Taking it
// out while decoding spares the handler a lookup and a delete in the map.
func SetHostLiftingHandler(h func(*Request) *Response) {
	handler = h
	dec.liftHost = true
}

// LiftedHost returns the Host header that Serve took out of r, if r is the
// request Serve is serving to a handler registered with
// SetHostLiftingHandler; ok is false for any other request, whose Host is
// still in its Header.
func LiftedHost(r *Request) (host string, ok bool) {
	if r != &current || !dec.liftHost {
		return "", false
	}
	return dec.host, true
}

// The state of the warm request path, reused from call to call: the guest
// runs one call at a time, and every heap allocation inside a warm call
// costs microseconds (see the package doc), so Serve decodes each request
// into the same Request and hands out pooled responses.
var (
	current Request
	dec     requestDecoder
	// serving is true while Serve runs the handler: only then may
	// NewResponse hand out pooled responses, since the call's end is when
	// they come back.
	serving bool
	pool    responsePool
)

// Serve decodes a request encoded in ABI version 1, runs the registered
// handler and appends the encoded response to dst. It is what gust_handle
// does, callable on the host so tests need no WebAssembly.
//
// The Request the handler gets, and any Response from NewResponse, are
// reused by the next call to Serve: see Request and NewResponse for what a
// handler may keep.
func Serve(dst, req []byte) []byte { return serve(dst, req, false) }

// ServeV2 is Serve for a request in ABI version 2: what gust_handle_v2
// does.
func ServeV2(dst, req []byte) []byte { return serve(dst, req, true) }

func serve(dst, req []byte, v2 bool) []byte {
	if err := dec.decode(&current, req, v2); err != nil {
		v := 1
		if v2 {
			v = 2
		}
		return AppendResponse(dst, textResponse(500, fmt.Sprintf("gust sdk: %v (host and SDK disagree on ABI version %d?)\n", err, v)))
	}
	h := handler
	if h == nil {
		return AppendResponse(dst, textResponse(500, "gust sdk: no handler registered; call sdk.Handle or lean.HandleFunc from init\n"))
	}
	pool.reset()
	serving = true
	// A handler that panics crashes the instance (and with it this state),
	// so there is nothing to restore on that path.
	resp := h(&current)
	serving = false
	dst = AppendResponse(dst, resp)
	current.Body = nil
	return dst
}

func textResponse(status int, s string) *Response {
	return &Response{
		Status: status,
		Header: Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:   []byte(s),
	}
}

// NewResponse returns a Response with status and a Content-Type header of
// contentType (even an empty one, which tells the host not to sniff). Called while a handler runs, it hands out a
// Response from a pool that the next call takes back: the handler must
// return it (or drop it), not keep it for a later call. Called outside a
// call (from init, say, to build a response once and return it on every
// call), it allocates a Response of its own that may be kept.
func NewResponse(status int, contentType string) *Response {
	if !serving {
		return &Response{Status: status, Header: Header{"Content-Type": {contentType}}}
	}
	return &pool.get(status, contentType).r
}

// TextResponse is NewResponse with body as its Body. A pooled response
// copies body into a buffer the pool keeps, so a warm call allocates
// nothing for it.
func TextResponse(status int, contentType, body string) *Response {
	if !serving {
		r := NewResponse(status, contentType)
		r.Body = []byte(body)
		return r
	}
	s := pool.get(status, contentType)
	s.body = append(s.body[:0], body...)
	s.r.Body = s.body
	return &s.r
}

// responsePool holds the responses handed out during one call.
type responsePool struct {
	slots []*pooledResponse
	used  int
}

type pooledResponse struct {
	r  Response
	h  Header
	ct [1]string
	// body is this slot's own body buffer, never one a handler supplied:
	// appending into a handler's slice would overwrite the handler's data.
	body []byte
}

func (p *responsePool) reset() { p.used = 0 }

func (p *responsePool) get(status int, contentType string) *pooledResponse {
	if p.used == len(p.slots) {
		p.slots = append(p.slots, &pooledResponse{h: Header{}})
	}
	s := p.slots[p.used]
	p.used++
	if len(s.h) > maxReusedHeader {
		s.h = Header{}
	} else {
		clear(s.h)
	}
	s.ct[0] = contentType
	s.h["Content-Type"] = s.ct[:1:1]
	s.r = Response{Status: status, Header: s.h}
	return s
}
