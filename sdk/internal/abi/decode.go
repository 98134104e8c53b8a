package abi

import (
	"encoding/binary"
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
//
// Everything else is shaped by what Go code costs in a guest (see the
// package doc): the scratch space holds offsets, not slices, so filling it
// writes no pointers (no write barriers while the guest's GC marks); a
// header name is recognized by comparing it with the previous request's
// names (calls from one client repeat the same few) before hashing it into
// the intern table; and the header map is refilled in place instead of
// cleared and rebuilt when the request's names are the previous request's.
type requestDecoder struct {
	// offs holds, for the request being decoded, the start and end in the
	// input of each of its strings: method, path, raw path (version 2
	// only), query, then name and value of each header entry.
	offs []uint32
	// vals backs the one-element value slices of the header map, so a
	// header with a single value (nearly all of them) costs no slice of
	// its own.
	vals []string
	// names interns canonical header names: the same few names arrive on
	// every call, and a hit skips both copying and canonicalizing.
	names map[string]string
	// prev holds the names of the previous request, in its order: raw as
	// they arrived and canonical.
	prev []internedName
	// keys is scratch for decode: each entry's interned name, or "" when
	// it must be copied.
	keys []string
	// reuse is true when the header map decode returned last holds one
	// entry per header name of that request (none repeated), so the next
	// request with the same names may refill it in place.
	reuse bool
	// pathQuery is path "?" query of the request last decoded, laid out so
	// that Path and Query are its two ends (see PathQuery).
	pathQuery string
	// liftHost makes decode take the Host header out of the map into host,
	// as net/http does with Request.Host (set by the net/http SDK).
	liftHost bool
	// host is the first Host value of the request last decoded, when
	// liftHost is set.
	host string
}

type internedName struct{ raw, canonical string }

// maxInterned bounds names: header names are chosen by callers, and a
// guest must not grow without limit on their whims.
const maxInterned = 128

// maxReusedHeader is the size above which a request's header map is not
// kept for the next call: Go maps never shrink, and clearing a large one
// on every call would cost more than a new one.
const maxReusedHeader = 64

// maxInPlace bounds the header count for which decode matches names
// against the previous request's (pairwise) and refills the map in place.
// It is at most 64: matches are tracked in a uint64.
const maxInPlace = 16

// span reads a length-prefixed string at p in b and returns where its
// bytes start and end.
func span(b []byte, p int) (start, end int, ok bool) {
	if len(b)-p < 4 {
		return 0, 0, false
	}
	n := binary.LittleEndian.Uint32(b[p:])
	start = p + 4
	if uint64(n) > uint64(len(b)-start) {
		return 0, 0, false
	}
	return start, start + int(n), true
}

// findPrev returns the index of raw among the previous request's names,
// or -1: at position i first, since a client sends its names in the same
// order, then anywhere, since gust's host sends them in the order of a Go
// map's iteration, which changes from call to call. It gives up on many
// names, where the intern table's hashing is cheaper than the scan.
func (dec *requestDecoder) findPrev(raw string, i int) int {
	prev := dec.prev
	if len(prev) > maxInPlace {
		return -1
	}
	if i < len(prev) && prev[i].raw == raw {
		return i
	}
	for j := range prev {
		if prev[j].raw == raw {
			return j
		}
	}
	return -1
}

// decode decodes b, a request in ABI version 2 if v2 is set and version 1
// otherwise, into r, reusing r.Header. On error r is left in an
// unspecified state.
func (dec *requestDecoder) decode(r *Request, b []byte, v2 bool) error {
	// Lengths fit in u32 (the host writes them as such), so offsets fit in
	// u32 as long as the input does.
	if uint64(len(b)) > 1<<32-1 {
		return fmt.Errorf("decode request: %d bytes is too long", len(b))
	}
	// lead is the count of strings before the header count: method, path,
	// (raw path,) query. Header entry i is strings lead+2i and lead+2i+1.
	lead := 3
	if v2 {
		lead = 4
	}
	offs := dec.offs[:0]
	p := 0
	for range lead {
		s, e, ok := span(b, p)
		if !ok {
			return fmt.Errorf("decode request: %w", errShort)
		}
		offs = append(offs, uint32(s), uint32(e))
		p = e
	}
	if len(b)-p < 4 {
		return fmt.Errorf("decode request: %w", errShort)
	}
	n := binary.LittleEndian.Uint32(b[p:])
	p += 4
	// Each entry takes at least 8 bytes; refuse counts the input cannot
	// hold before sizing anything by them.
	if uint64(n)*8 > uint64(len(b)-p) {
		return fmt.Errorf("decode request: header count %d exceeds the input", n)
	}
	count := int(n)
	for range 2 * count {
		s, e, ok := span(b, p)
		if !ok {
			return fmt.Errorf("decode request: %w", errShort)
		}
		offs = append(offs, uint32(s), uint32(e))
		p = e
	}
	bs, be, ok := span(b, p)
	if !ok {
		return fmt.Errorf("decode request: %w", errShort)
	}
	dec.offs = offs
	if be != len(b) {
		return fmt.Errorf("decode request: %d bytes after the body", len(b)-be)
	}
	str := func(i int) []byte { return b[offs[2*i]:offs[2*i+1]] }

	// Size the one copy: names already known and well-known methods need
	// no room.
	size := 0
	method, known := knownMethod(str(0))
	if !known {
		size += len(str(0))
	}
	query := str(lead - 1)
	size += len(str(1)) + len(query)
	if len(query) > 0 {
		size++ // the '?' between path and query; see PathQuery
	}
	if v2 {
		size += len(str(2))
	}
	if cap(dec.keys) < count {
		dec.keys = make([]string, count)
	}
	// keys[i] is the interned name of entry i, or "" to copy: looked up
	// once here and used below.
	keys := dec.keys[:count]
	// same: every name matched a different name of the previous request,
	// which had as many (so the two requests have the same names).
	same := count == len(dec.prev) && count <= maxInPlace
	var matched uint64
	for i := range count {
		raw := str(lead + 2*i)
		var k string
		if j := dec.findPrev(unsafeString(raw), i); j >= 0 {
			k = dec.prev[j].canonical
			if matched&(1<<j) != 0 {
				same = false
			}
			matched |= 1 << j
		} else {
			same = false
			k = dec.names[unsafeString(raw)]
			if k == "" {
				size += len(raw)
			}
		}
		keys[i] = k
		size += len(str(lead + 1 + 2*i))
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
		method = take(str(0))
	}
	r.Method = method
	dec.pathQuery = ""
	if q := query; len(q) > 0 {
		start := len(own)
		r.Path = take(str(1))
		own = append(own, '?')
		r.Query = take(q)
		dec.pathQuery = unsafe.String(&own[start], len(own)-start)
	} else {
		r.Path = take(str(1))
		r.Query = ""
	}
	r.RawPath = ""
	if v2 {
		r.RawPath = take(str(2))
	}

	// Names not seen at their position last time: intern them, copying
	// and canonicalizing the new ones, and remember them by position.
	if !same {
		if cap(dec.prev) < count {
			dec.prev = append(dec.prev[:cap(dec.prev)], make([]internedName, count-cap(dec.prev))...)
		}
		dec.prev = dec.prev[:count]
		for i := range count {
			raw := str(lead + 2*i)
			k := keys[i]
			if k == "" && len(raw) > 0 {
				start := len(own)
				k = take(raw)
				canonicalizeInPlace(own[start:])
				if len(dec.names) < maxInterned {
					if dec.names == nil {
						dec.names = make(map[string]string)
					}
					// The raw key must be a string of its own: raw is a view
					// of the request buffer. k is stable (it lives in own).
					dec.names[string(raw)] = k
				}
				keys[i] = k
			}
			if dec.prev[i].raw != unsafeString(raw) {
				dec.prev[i] = internedName{raw: string(raw), canonical: k}
			}
		}
	}

	if cap(dec.vals) < count {
		dec.vals = make([]string, count)
	}
	vals := dec.vals[:count]
	for i := range count {
		vals[i] = take(str(lead + 1 + 2*i))
	}

	// The map is refilled in place when this request's names are the
	// previous one's, that one repeated none, and the handler left no
	// other name in the map (checked by its size after the refill, which
	// overwrites every name this request has): assignments then find their
	// slots without the map being emptied and regrown first. Otherwise it
	// is cleared and rebuilt.
	h := r.Header
	dec.host = ""
	lifted := 0
	if same && dec.reuse && h != nil {
		for i, k := range keys {
			if dec.liftHost && k == "Host" {
				dec.host = vals[i]
				lifted++
				continue
			}
			h[k] = vals[i : i+1 : i+1]
		}
		if len(h) == count-lifted {
			dec.finish(r, h, count, b[bs:be:be])
			return nil
		}
	}
	if h == nil || len(h) > maxReusedHeader {
		h = make(Header, count)
	} else {
		clear(h)
	}
	dec.host = ""
	hostSeen, dup := false, false
	for i, k := range keys {
		if dec.liftHost && k == "Host" {
			if hostSeen {
				dup = true
			} else {
				dec.host, hostSeen = vals[i], true
			}
			continue
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, vals[i])
			dup = true
		} else {
			h[k] = vals[i : i+1 : i+1]
		}
	}
	dec.reuse = !dup && count <= maxInPlace
	dec.finish(r, h, count, b[bs:be:be])
	return nil
}

// finish hands the decoded header map and body to r and lets go of the
// previous call's longer tail, so its strings can be collected.
func (dec *requestDecoder) finish(r *Request, h Header, count int, body []byte) {
	clear(dec.vals[count:])
	clear(dec.keys[count:])
	r.Header = h
	r.Body = body
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
