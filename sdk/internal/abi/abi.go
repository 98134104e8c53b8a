package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Version is the newest ABI version this package speaks. It speaks
// version 1 too, through gust_handle, for hosts that predate version 2.
const Version = 2

// Header maps canonical header names ("Content-Type") to their values. It
// has the same shape and rules as net/http's Header, so the sdk package
// converts between the two without copying.
type Header map[string][]string

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	if v := h[CanonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key.
func (h Header) Values(key string) []string { return h[CanonicalKey(key)] }

// Set replaces the values of key with value.
func (h Header) Set(key, value string) { h[CanonicalKey(key)] = []string{value} }

// Add appends value to the values of key.
func (h Header) Add(key, value string) {
	k := CanonicalKey(key)
	h[k] = append(h[k], value)
}

// Del removes key.
func (h Header) Del(key string) { delete(h, CanonicalKey(key)) }

// CanonicalKey returns the canonical form of a header name, as
// net/textproto does: the first letter and every letter after a '-' upper
// case, the rest lower case. A name with a byte that is not a token
// character is returned unchanged.
func CanonicalKey(s string) string {
	upper := true
	ok := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isTokenByte(c) {
			return s
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			ok = false
		}
		upper = c == '-'
	}
	if ok {
		return s
	}
	b := []byte(s)
	upper = true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return string(b)
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// Request is one HTTP request to the function. Path is the part after
// /fn/NAME and starts with "/", decoded; RawPath is that part as the client
// escaped it when that differs from Path's default escaping ("/a%2Fb" for
// the Path "/a/b"), and "" otherwise, as in net/url's URL.RawPath (always ""
// on a host that speaks only ABI version 1). Query is the raw query without
// '?'.
//
// Lifetime: the SDK decodes every call into the same Request, header map
// and value slices, because each heap allocation in a warm guest is costly
// (see Serve). A handler must not keep the *Request, its Header map or its
// Body after it returns; copy what it needs. Body aliases the buffer the
// host writes the next request into. The strings (Method, Path, Query,
// header names and values) are ordinary immutable strings and may be kept.
type Request struct {
	Method  string
	Path    string
	RawPath string
	Query   string
	Header  Header
	Body    []byte
}

// QueryValue returns the first value of the query parameter name, or "",
// decoded like url.ParseQuery does. It scans the query instead of building
// a url.Values map: allocations are slow in a guest.
func (r *Request) QueryValue(name string) string {
	q := r.Query
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != name {
			continue
		}
		if !strings.ContainsAny(v, "%+") {
			return v
		}
		if u, err := url.QueryUnescape(v); err == nil {
			return u
		}
	}
	return ""
}

// Response is what the function answers. A zero Status means 200.
type Response struct {
	Status int
	Header Header
	Body   []byte
}

// DecodeRequest decodes a request encoded in ABI version 1 into a new
// Request. Strings are copied (into one allocation); Body aliases b.
func DecodeRequest(b []byte) (*Request, error) { return decodeRequest(b, false) }

// DecodeRequestV2 is DecodeRequest for ABI version 2.
func DecodeRequestV2(b []byte) (*Request, error) { return decodeRequest(b, true) }

func decodeRequest(b []byte, v2 bool) (*Request, error) {
	var dec requestDecoder
	r := &Request{}
	if err := dec.decode(r, b, v2); err != nil {
		return nil, err
	}
	return r, nil
}

// AppendRequest appends the encoding of r in ABI version 1 (without its
// RawPath) to dst. The host has its own encoder; this one lets tests
// round-trip.
func AppendRequest(dst []byte, r *Request) []byte { return appendRequest(dst, r, false) }

// AppendRequestV2 appends the encoding of r in ABI version 2 to dst.
func AppendRequestV2(dst []byte, r *Request) []byte { return appendRequest(dst, r, true) }

func appendRequest(dst []byte, r *Request, v2 bool) []byte {
	dst = appendBytes(dst, r.Method)
	dst = appendBytes(dst, r.Path)
	if v2 {
		dst = appendBytes(dst, r.RawPath)
	}
	dst = appendBytes(dst, r.Query)
	dst = appendHeader(dst, r.Header)
	return appendBytes(dst, r.Body)
}

// AppendResponse appends the encoding of r to dst. A nil r is an empty 200.
func AppendResponse(dst []byte, r *Response) []byte {
	if r == nil {
		r = &Response{}
	}
	status := r.Status
	if status == 0 {
		status = 200
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(status))
	dst = appendHeader(dst, r.Header)
	return appendBytes(dst, r.Body)
}

// DecodeResponse decodes an encoded response. Body aliases b.
func DecodeResponse(b []byte) (*Response, error) {
	d := decoder{b: b}
	r := &Response{Status: int(d.u32())}
	r.Header = d.header()
	r.Body = d.bytes()
	if d.err != nil {
		return nil, fmt.Errorf("decode response: %w", d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("decode response: %d bytes after the body", len(d.b))
	}
	return r, nil
}

func appendHeader(dst []byte, h Header) []byte {
	// One pass over the map: the count goes in front of the entries once
	// they are written. Map iteration is dear in a guest.
	at := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			dst = appendBytes(dst, k)
			dst = appendBytes(dst, v)
		}
		n += len(vs)
	}
	binary.LittleEndian.PutUint32(dst[at:], uint32(n))
	return dst
}

func appendBytes[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

var errShort = errors.New("truncated input")

// decoder reads the ABI encoding; the first error sticks so callers check
// once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)) {
		d.err = fmt.Errorf("length %d exceeds the %d bytes left", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) header() Header {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	// Each entry takes at least 8 bytes; refuse counts the input cannot hold
	// before allocating for them.
	if uint64(n)*8 > uint64(len(d.b)) {
		d.err = fmt.Errorf("header count %d exceeds the input", n)
		return nil
	}
	h := make(Header, n)
	for i := uint32(0); i < n && d.err == nil; i++ {
		k := CanonicalKey(string(d.bytes()))
		v := string(d.bytes())
		h[k] = append(h[k], v)
	}
	return h
}
