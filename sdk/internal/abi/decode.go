package abi

import (
	"fmt"
	"unsafe"
)

// requestDecoder decodes requests into a Request it is handed, reusing its
// own scratch space and the Request's header map between calls, so that a
// warm call costs one heap allocation for all the request's strings
// together (none at all for a request without strings to copy).
//
// Why strings are copied at all: a string that viewed the request buffer
// would change under the handler's feet at the next call, and a handler
// that keeps one (a map key counting names, say) would corrupt its own
// state silently. One copy of all of them, in one allocation, keeps Go's
// promise that strings never change, at the price of one allocation.
type requestDecoder struct {
	// spans holds, for the request being decoded, each string of the
	// request as a view into the input: method, path, query, then name
	// and value of each header entry.
	spans [][]byte
	// vals backs the one-element value slices of the header map, so a
	// header with a single value (nearly all of them) costs no slice of
	// its own.
	vals []string
	// names interns canonical header names: the same few names arrive on
	// every call, and a hit skips both copying and canonicalizing.
	names map[string]string
	// keys is scratch for decode: each entry's interned name.
	keys []string
	// pathQuery is path "?" query of the request last decoded, laid out so
	// that Path and Query are its two ends (see PathQuery).
	pathQuery string
}

// maxInterned bounds names: header names are chosen by callers, and a
// guest must not grow without limit on their whims.
const maxInterned = 128

// maxReusedHeader is the size above which a request's header map is not
// kept for the next call: Go maps never shrink, and clearing a large one
// on every call would cost more than a new one.
const maxReusedHeader = 64

// decode decodes b into r, reusing r.Header. On error r is left in an
// unspecified state.
func (dec *requestDecoder) decode(r *Request, b []byte) error {
	d := decoder{b: b}
	spans := dec.spans[:0]
	spans = append(spans, d.bytes(), d.bytes(), d.bytes())
	n := d.u32()
	// Each entry takes at least 8 bytes; refuse counts the input cannot
	// hold before sizing anything by them.
	if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
		d.err = fmt.Errorf("header count %d exceeds the input", n)
	}
	for i := uint32(0); i < n && d.err == nil; i++ {
		spans = append(spans, d.bytes(), d.bytes())
	}
	body := d.bytes()
	dec.spans = spans
	if d.err != nil {
		return fmt.Errorf("decode request: %w", d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("decode request: %d bytes after the body", len(d.b))
	}

	// Size the one copy: names found in the intern table and well-known
	// methods need no room.
	size := 0
	method, known := knownMethod(spans[0])
	if !known {
		size += len(spans[0])
	}
	size += len(spans[1]) + len(spans[2])
	if len(spans[2]) > 0 {
		size++ // the '?' between path and query; see PathQuery
	}
	count := (len(spans) - 3) / 2
	if cap(dec.keys) < count {
		dec.keys = make([]string, count)
	}
	// keys[i] is the interned name of entry i, or "" to copy: looked up
	// once here and used below, as map lookups are dear in a guest.
	keys := dec.keys[:count]
	for i := range count {
		raw := spans[3+2*i]
		k, ok := dec.names[unsafeString(raw)]
		if !ok {
			size += len(raw)
		}
		keys[i] = k
		size += len(spans[4+2*i])
	}
	var own []byte
	if size > 0 {
		own = make([]byte, 0, size)
	}
	take := func(p []byte) string {
		if len(p) == 0 {
			return ""
		}
		start := len(own)
		own = append(own, p...)
		return unsafe.String(&own[start], len(p))
	}
	if !known {
		method = take(spans[0])
	}
	r.Method = method
	dec.pathQuery = ""
	if len(spans[2]) > 0 {
		start := len(own)
		r.Path = take(spans[1])
		own = append(own, '?')
		r.Query = take(spans[2])
		dec.pathQuery = unsafe.String(&own[start], len(own)-start)
	} else {
		r.Path = take(spans[1])
		r.Query = ""
	}

	h := r.Header
	if h == nil || len(h) > maxReusedHeader {
		h = make(Header, len(spans)/2-1)
	} else {
		clear(h)
	}
	if cap(dec.vals) < count {
		dec.vals = make([]string, count)
	}
	vals := dec.vals[:count]
	for i := range count {
		raw := spans[3+2*i]
		k := keys[i]
		if k == "" && len(raw) > 0 {
			start := len(own)
			k = take(raw)
			if k != "" {
				canonicalizeInPlace(own[start:])
				if len(dec.names) < maxInterned {
					if dec.names == nil {
						dec.names = make(map[string]string)
					}
					// The raw key must be a string of its own: raw is a view
					// of the request buffer. k is stable (it lives in own).
					dec.names[string(raw)] = k
				}
			}
		}
		vals[i] = take(spans[4+2*i])
		if old, dup := h[k]; dup {
			h[k] = append(old, vals[i])
		} else {
			h[k] = vals[i : i+1 : i+1]
		}
	}
	// Drop references to the previous call's longer tail so its strings
	// can be collected.
	clear(dec.vals[count:])
	clear(dec.keys[count:])
	r.Header = h
	r.Body = body
	return nil
}

// knownMethod returns the static string for the common methods so they need
// no copy.
func knownMethod(b []byte) (string, bool) {
	switch string(b) {
	case "GET":
		return "GET", true
	case "POST":
		return "POST", true
	case "PUT":
		return "PUT", true
	case "DELETE":
		return "DELETE", true
	case "HEAD":
		return "HEAD", true
	case "PATCH":
		return "PATCH", true
	case "OPTIONS":
		return "OPTIONS", true
	}
	return "", false
}

// canonicalizeInPlace rewrites a header name to its canonical form, as
// CanonicalKey does, in b itself.
func canonicalizeInPlace(b []byte) {
	upper := true
	ok := true
	for _, c := range b {
		if !isTokenByte(c) {
			return
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			ok = false
		}
		upper = c == '-'
	}
	if ok {
		return
	}
	upper = true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
}

// unsafeString views b as a string for a map lookup or comparison that does
// not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// PathQuery returns r.Path + "?" + r.Query. For the request Serve is
// serving, with Path and Query as decoded, that string already exists
// (decode lays the two out around a '?') and costs no allocation.
func PathQuery(r *Request) string {
	pq := dec.pathQuery
	if r == &current && len(pq) == len(r.Path)+1+len(r.Query) && len(r.Path) > 0 && len(r.Query) > 0 &&
		unsafe.StringData(r.Path) == unsafe.StringData(pq) &&
		unsafe.StringData(r.Query) == unsafe.StringData(pq[len(r.Path)+1:]) {
		return pq
	}
	return r.Path + "?" + r.Query
}
