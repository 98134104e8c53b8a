package abi

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// helloRequest is what the gateway sends for GET /?name=bench: a few
// canonical headers and the invocation id, which differs per call.
func helloRequest(id string) []byte {
	return AppendRequest(nil, &Request{
		Method: "GET",
		Path:   "/",
		Query:  "name=bench",
		Header: Header{
			"Accept":               {"*/*"},
			"User-Agent":           {"bench"},
			"X-Gust-Invocation-Id": {id},
		},
	})
}

// A warm call allocates once, for the request's strings together; the
// request, its header map and a response from TextResponse are reused.
func TestServeWarmAllocations(t *testing.T) {
	defer SetHandler(nil)
	SetHandler(func(r *Request) *Response {
		return TextResponse(200, "text/plain; charset=utf-8", "Hello, "+r.QueryValue("name")+"!\n")
	})
	req := helloRequest("inv-1")
	var out []byte
	out = Serve(out[:0], req) // first call fills the pools
	allocs := testing.AllocsPerRun(100, func() { out = Serve(out[:0], req) })
	// One for the request's strings, one for the handler's concatenation.
	t.Logf("warm Serve: %.1f allocations per call", allocs)
	if allocs > 2 {
		t.Fatalf("warm Serve made %.1f allocations, want at most 2", allocs)
	}
	resp, err := DecodeResponse(out)
	if err != nil || resp.Status != 200 || string(resp.Body) != "Hello, bench!\n" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("response %+v %v", resp, err)
	}
}

// What a handler may keep (strings) survives the next call; the reused
// header map carries nothing over from one call to the next.
func TestServeReuseKeepsStringsStable(t *testing.T) {
	defer SetHandler(nil)
	var kept []string
	var lastHeader Header
	SetHandler(func(r *Request) *Response {
		kept = append(kept, r.Method, r.Path, r.Query, r.Header.Get("X-Gust-Invocation-Id"), PathQuery(r))
		lastHeader = Header{}
		for k, v := range r.Header {
			lastHeader[k] = append([]string(nil), v...)
		}
		return TextResponse(200, "text/plain", r.Path)
	})
	Serve(nil, AppendRequest(nil, &Request{Method: "PUT", Path: "/a", Query: "x=1",
		Header: Header{"x-one": {"1"}, "X-Multi": {"a", "b"}, "X-Gust-Invocation-Id": {"id-1"}}}))
	if len(lastHeader) != 3 || lastHeader.Get("X-One") != "1" || len(lastHeader["X-Multi"]) != 2 {
		t.Fatalf("first header %v", lastHeader)
	}
	resp, _ := DecodeResponse(Serve(nil, AppendRequest(nil, &Request{Method: "MKCOL", Path: "/bb", Query: "",
		Header: Header{"X-Gust-Invocation-Id": {"id-2"}}, Body: []byte("zz")})))
	if string(resp.Body) != "/bb" {
		t.Fatalf("second body %q", resp.Body)
	}
	want := []string{"PUT", "/a", "x=1", "id-1", "/a?x=1", "MKCOL", "/bb", "", "id-2", "/bb?"}
	if strings.Join(kept, "|") != strings.Join(want, "|") {
		t.Fatalf("kept %q, want %q", kept, want)
	}
	if len(lastHeader) != 1 {
		t.Fatalf("second header %v: the first call's entries leaked", lastHeader)
	}
}

// A response from NewResponse outside a call is the caller's own; one made
// during a call is recycled at the next call.
func TestNewResponseOutsideCallIsOwned(t *testing.T) {
	defer SetHandler(nil)
	fixed := TextResponse(404, "text/plain", "gone")
	SetHandler(func(r *Request) *Response {
		if r.Path == "/fixed" {
			return fixed
		}
		return TextResponse(200, "text/plain", "other")
	})
	for _, p := range []string{"/fixed", "/x", "/fixed"} {
		resp, err := DecodeResponse(Serve(nil, AppendRequest(nil, &Request{Method: "GET", Path: p})))
		if err != nil {
			t.Fatal(err)
		}
		if p == "/fixed" && (resp.Status != 404 || string(resp.Body) != "gone") {
			t.Fatalf("fixed response changed: %d %q", resp.Status, resp.Body)
		}
	}
	if string(fixed.Body) != "gone" || fixed.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("fixed response changed: %+v", fixed)
	}
}

// encodeOrdered encodes a request whose header entries arrive in the given
// order (AppendRequest takes them from a map, in no fixed order).
func encodeOrdered(path string, hdr ...string) []byte {
	b := appendBytes(nil, "GET")
	b = appendBytes(b, path)
	b = appendBytes(b, "")
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hdr)/2))
	for _, s := range hdr {
		b = appendBytes(b, s)
	}
	return appendBytes(b, "")
}

// Serve refills the previous call's header map in place when the same
// names arrive in the same order; whatever the handler did to the map or
// its slices, the next call's map holds exactly the next request's headers.
func TestServeHeaderMapReuse(t *testing.T) {
	defer SetHandler(nil)
	type step struct {
		hdr    []string // name, value, ... in wire order
		want   Header   // what the handler must see
		mutate func(Header)
	}
	steps := []step{
		{hdr: []string{"accept", "a1", "User-Agent", "u1", "X-Id", "1"},
			want:   Header{"Accept": {"a1"}, "User-Agent": {"u1"}, "X-Id": {"1"}},
			mutate: func(h Header) { h.Set("X-Added", "x") }},
		{hdr: []string{"accept", "a2", "User-Agent", "u2", "X-Id", "2"},
			want:   Header{"Accept": {"a2"}, "User-Agent": {"u2"}, "X-Id": {"2"}},
			mutate: func(h Header) { delete(h, "Accept") }},
		{hdr: []string{"accept", "a3", "User-Agent", "u3", "X-Id", "3"},
			want:   Header{"Accept": {"a3"}, "User-Agent": {"u3"}, "X-Id": {"3"}},
			mutate: func(h Header) { h["User-Agent"] = []string{"zzz", "yyy"}; h["X-Id"][0] = "mutated" }},
		{hdr: []string{"accept", "a4", "User-Agent", "u4", "X-Id", "4"},
			want:   Header{"Accept": {"a4"}, "User-Agent": {"u4"}, "X-Id": {"4"}},
			mutate: func(h Header) { h.Add("Accept", "more") }},
		{hdr: []string{"accept", "a5", "User-Agent", "u5", "X-Id", "5"},
			want: Header{"Accept": {"a5"}, "User-Agent": {"u5"}, "X-Id": {"5"}}},
		// A repeated name, twice in a row: never refilled in place.
		{hdr: []string{"accept", "a6", "Accept", "b6", "X-Id", "6"},
			want: Header{"Accept": {"a6", "b6"}, "X-Id": {"6"}}},
		{hdr: []string{"accept", "a7", "Accept", "b7", "X-Id", "7"},
			want: Header{"Accept": {"a7", "b7"}, "X-Id": {"7"}}},
		// Fewer names, then different ones at the same positions.
		{hdr: []string{"accept", "a8"}, want: Header{"Accept": {"a8"}}},
		{hdr: []string{"accept", "a9"}, want: Header{"Accept": {"a9"}}},
		{hdr: []string{"x-other", "o", "accept", "a10"}, want: Header{"X-Other": {"o"}, "Accept": {"a10"}}},
		{hdr: []string{}, want: Header{}},
		{hdr: []string{"Host", "h.example", "accept", "a11"}, want: Header{"Host": {"h.example"}, "Accept": {"a11"}}},
	}
	var got Header
	var mutate func(Header)
	SetHandler(func(r *Request) *Response {
		got = Header{}
		for k, v := range r.Header {
			got[k] = append([]string(nil), v...)
		}
		if mutate != nil {
			mutate(r.Header)
		}
		return nil
	})
	for i, s := range steps {
		mutate = s.mutate
		Serve(nil, encodeOrdered("/", s.hdr...))
		if !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: header %v, want %v", i, got, s.want)
		}
	}
}

// With a host-lifting handler (the net/http SDK's), Host is taken out of
// the header map on both the rebuilt and the refilled path.
func TestServeLiftsHost(t *testing.T) {
	defer SetHandler(nil)
	var hosts []string
	var leaked bool
	var self Request
	SetHostLiftingHandler(func(r *Request) *Response {
		h, ok := LiftedHost(r)
		if !ok {
			t.Fatal("LiftedHost: not lifted for the request being served")
		}
		hosts = append(hosts, h)
		if _, in := r.Header["Host"]; in || len(r.Header) != 1 {
			leaked = true
		}
		if _, ok := LiftedHost(&self); ok {
			t.Fatal("LiftedHost: lifted for a request Serve did not decode")
		}
		return nil
	})
	for _, h := range []string{"a.example", "b.example", "c.example"} {
		Serve(nil, encodeOrdered("/", "host", h, "X-Id", "1"))
	}
	Serve(nil, encodeOrdered("/", "X-Id", "1"))
	if strings.Join(hosts, ",") != "a.example,b.example,c.example," || leaked {
		t.Fatalf("hosts %q, Host left in the map: %v", hosts, leaked)
	}
}

// The same names in another order (gust's host sends them in map order)
// still refill the map correctly.
func TestServeHeaderMapReuseReordered(t *testing.T) {
	defer SetHandler(nil)
	var got Header
	SetHandler(func(r *Request) *Response {
		got = Header{}
		for k, v := range r.Header {
			got[k] = append([]string(nil), v...)
		}
		r.Header.Del("B") // the next call must bring it back
		return nil
	})
	orders := [][]string{
		{"a", "1", "b", "2", "c", "3"},
		{"c", "3", "a", "1", "b", "2"},
		{"b", "2", "c", "3", "a", "1"},
		{"b", "2", "b", "2", "a", "1"},
		{"c", "3", "a", "1", "b", "2"},
	}
	for i, o := range orders {
		Serve(nil, encodeOrdered("/", o...))
		want := Header{"A": {"1"}, "B": {"2"}, "C": {"3"}}
		if i == 3 {
			want = Header{"A": {"1"}, "B": {"2", "2"}}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("order %d: header %v, want %v", i, got, want)
		}
	}
}

// FuzzServeHeaderReuse serves a sequence of requests, each split from the
// input, with a handler that mutates the header map, and checks that every
// call sees what a fresh decoder makes of its request: reusing the map,
// the interned names and the previous request's names never shows a
// handler anything else.
func FuzzServeHeaderReuse(f *testing.F) {
	f.Add([]byte("a\x001\x00b\x002\x00\xffb\x002\x00a\x001\x00\xffB\x00x\x00\xff"), uint8(1))
	f.Add([]byte("host\x00h\x00a\x001\x00\xffa\x001\x00a\x002\x00\xff\xffhost\x00h\x00"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, mutations uint8) {
		defer SetHandler(nil)
		var got Header
		var gotHost string
		call := 0
		handle := func(r *Request) *Response {
			got = Header{}
			for k, v := range r.Header {
				got[k] = append([]string(nil), v...)
			}
			gotHost, _ = LiftedHost(r)
			switch (int(mutations) >> (call % 4 * 2)) & 3 {
			case 1:
				r.Header["X-Added"] = []string{"x"}
			case 2:
				for k := range r.Header {
					delete(r.Header, k)
					break
				}
			case 3:
				for k, v := range r.Header {
					if len(v) > 0 {
						v[0] = "mutated"
					}
					r.Header[k] = append(v, "more")
				}
			}
			call++
			return nil
		}
		for i, chunk := range bytes.Split(in, []byte{0xff}) {
			lift := mutations&1 == 1 && i%2 == 0
			if lift {
				SetHostLiftingHandler(handle)
			} else {
				SetHandler(handle)
			}
			fields := bytes.Split(chunk, []byte{0})
			var hdr []string
			for j := 0; j+1 < len(fields); j += 2 {
				hdr = append(hdr, string(fields[j]), string(fields[j+1]))
			}
			req := encodeOrdered("/", hdr...)
			want, err := DecodeRequest(req)
			if err != nil {
				t.Fatalf("reference decode: %v", err)
			}
			wantHost := ""
			if lift {
				if v := want.Header["Host"]; len(v) > 0 {
					wantHost = v[0]
				}
				delete(want.Header, "Host")
			}
			got = nil
			Serve(nil, req)
			if got == nil || !reflect.DeepEqual(got, want.Header) || gotHost != wantHost {
				t.Fatalf("call %d: header %v host %q, want %v host %q", i, got, gotHost, want.Header, wantHost)
			}
		}
	})
}

// Serve (gust_handle) and ServeV2 (gust_handle_v2) serve one handler: the
// raw path reaches it through version 2 only, and a version 1 call after a
// version 2 one has none left over.
func TestServeV2RawPath(t *testing.T) {
	defer SetHandler(nil)
	var got []string
	SetHandler(func(r *Request) *Response {
		got = append(got, r.Path+" "+r.RawPath+" "+r.Query+" "+r.Header.Get("X-K"))
		return nil
	})
	req := &Request{Method: "GET", Path: "/a/b", RawPath: "/a%2Fb", Query: "q=1", Header: Header{"X-K": {"v"}}}
	for _, b := range [][]byte{AppendRequestV2(nil, req), AppendRequest(nil, req), AppendRequestV2(nil, req)} {
		serve := ServeV2
		if bytes.Equal(b, AppendRequest(nil, req)) {
			serve = Serve
		}
		if resp, err := DecodeResponse(serve(nil, b)); err != nil || resp.Status != 200 {
			t.Fatalf("response %+v, %v", resp, err)
		}
	}
	want := []string{"/a/b /a%2Fb q=1 v", "/a/b  q=1 v", "/a/b /a%2Fb q=1 v"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("handler saw %q, want %q", got, want)
	}
	if pq := PathQuery(&current); pq != "/a/b?q=1" {
		t.Fatalf("PathQuery = %q", pq)
	}
}
