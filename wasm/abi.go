package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"unsafe"

	"github.com/gustfaas/gust"
)

// headerInvocationID is the request header through which a reactor learns
// its invocation id.
const headerInvocationID = "X-Gust-Invocation-Id"

// addsInvocationID reports whether the encoding of req carries an extra
// X-Gust-Invocation-Id entry.
func addsInvocationID(req *gust.Request) bool {
	if req.ID == "" {
		return false
	}
	_, has := req.Header[headerInvocationID]
	return !has
}

// requestSize returns the encoded size of req in ABI version 1, or with
// v2 in version 2 (which adds the raw path), or an error if it does not fit
// the 32-bit address space of a guest.
func requestSize(req *gust.Request, v2 bool) (uint32, error) {
	n := uint64(4*3 + 4 + 4)
	n += uint64(len(req.Method) + len(req.Path) + len(req.Query) + len(req.Body))
	if v2 {
		n += 4 + uint64(len(req.RawPath))
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			n += 8 + uint64(len(k)+len(v))
		}
	}
	if addsInvocationID(req) {
		n += 8 + uint64(len(headerInvocationID)+len(req.ID))
	}
	if n > math.MaxUint32 {
		return 0, gust.Errorf(gust.ETOOLARGE, "request of %d bytes does not fit a WebAssembly guest", n)
	}
	return uint32(n), nil
}

// encodeRequest writes req into b, which is exactly requestSize(req, v2)
// long (in practice, a view of guest memory), in ABI version 2 if v2 is set
// and version 1 otherwise.
func encodeRequest(b []byte, req *gust.Request, v2 bool) {
	b = putBytes(b, req.Method)
	b = putBytes(b, req.Path)
	if v2 {
		b = putBytes(b, req.RawPath)
	}
	b = putBytes(b, req.Query)
	n := 0
	for _, vs := range req.Header {
		n += len(vs)
	}
	add := addsInvocationID(req)
	if add {
		n++
	}
	binary.LittleEndian.PutUint32(b, uint32(n))
	b = b[4:]
	for k, vs := range req.Header {
		for _, v := range vs {
			b = putBytes(b, k)
			b = putBytes(b, v)
		}
	}
	if add {
		b = putBytes(b, headerInvocationID)
		b = putBytes(b, req.ID)
	}
	putBytes(b, req.Body)
}

func putBytes[S ~string | ~[]byte](b []byte, s S) []byte {
	binary.LittleEndian.PutUint32(b, uint32(len(s)))
	copy(b[4:], s)
	return b[4+len(s):]
}

var errTruncated = errors.New("truncated")

// decodeResponse decodes a response from guest memory. It copies what it
// keeps: b is a view that the next call overwrites.
//
// Every warm call ends here, so the copy is one allocation for every header
// name, value and the body together, plus one for all the value slices:
// the strings are views of that block, which nothing writes after this
// function returns.
func decodeResponse(b []byte) (*gust.Response, error) {
	d := decoder{b: b}
	status := d.u32()
	n := d.u32()
	if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
		return nil, fmt.Errorf("header count %d exceeds the %d bytes left", n, len(d.b))
	}
	// First pass: find the spans and the size of the copy.
	var small [16][2][]byte
	spans := small[:0]
	if n > uint32(len(small)) {
		spans = make([][2][]byte, 0, n)
	}
	size := 0
	for i := uint32(0); i < n && d.err == nil; i++ {
		k := d.bytes()
		v := d.bytes()
		spans = append(spans, [2][]byte{k, v})
		size += len(k) + len(v)
	}
	body := d.bytes()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the body", len(d.b))
	}
	if status < 100 || status > 999 {
		return nil, fmt.Errorf("invalid status %d", status)
	}
	var resp *gust.Response
	var vals []string
	if n <= uint32(len(responseBlock{}.vals)) {
		// The usual few headers: the response and its value strings in
		// one allocation.
		blk := new(responseBlock)
		resp, vals = &blk.resp, blk.vals[:n]
	} else {
		resp, vals = new(gust.Response), make([]string, n)
	}
	resp.Status, resp.Header = int(status), make(http.Header, n)
	if size+len(body) == 0 {
		return resp, nil
	}
	block := make([]byte, 0, size+len(body))
	if len(spans) > 0 {
		for i, kv := range spans {
			at := len(block)
			block = append(block, kv[0]...)
			key := unsafe.String(unsafe.SliceData(block[at:]), len(kv[0]))
			at = len(block)
			block = append(block, kv[1]...)
			if len(kv[1]) > 0 {
				vals[i] = unsafe.String(unsafe.SliceData(block[at:]), len(kv[1]))
			}
			// Canonical already as a rule (the SDKs write them so), and then
			// CanonicalHeaderKey returns key itself.
			key = http.CanonicalHeaderKey(key)
			if prev, ok := resp.Header[key]; ok {
				resp.Header[key] = append(prev, vals[i])
			} else {
				resp.Header[key] = vals[i : i+1 : i+1]
			}
		}
	}
	if len(body) > 0 {
		at := len(block)
		block = append(block, body...)
		resp.Body = block[at:len(block):len(block)]
	}
	return resp, nil
}

// responseBlock is a decoded response with room for the value strings of
// up to eight headers, allocated as one.
type responseBlock struct {
	resp gust.Response
	vals [8]string
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = errTruncated
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
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
