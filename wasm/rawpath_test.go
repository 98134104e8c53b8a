package wasm_test

import (
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// rawPathGuest is a net/http guest that answers with how it sees the URL.
const rawPathGuest = `package main

import (
	"fmt"
	"net/http"

	"github.com/gustfaas/gust/sdk"
)

func init() {
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s|%s", r.URL.Path, r.URL.RawPath, r.URL.EscapedPath(), r.RequestURI)
	})
}

func main() {}
`

// A guest of this SDK (ABI version 2) tells an escaped slash from a
// separator as a net/http server does: URL.RawPath is set, EscapedPath and
// RequestURI give the client's escaping back. Restored instances (the
// second one) call the same export as the first.
func TestReactorRawPath(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, wasmtest.GoGuest(t, rawPathGuest), gust.Spec{}, nil)
	for i := range 2 {
		inst := start(t, m)
		for _, tc := range []struct {
			path, raw, query, want string
		}{
			{"/a/b", "/a%2Fb", "x=1", "/a/b|/a%2Fb|/a%2Fb|/a%2Fb?x=1"},
			{"/a/b", "", "", "/a/b||/a/b|/a/b"},
			{"/a b", "", "", "/a b||/a%20b|/a%20b"},
		} {
			req := get(tc.path, tc.query)
			req.RawPath = tc.raw
			if resp := invoke(t, inst, req); resp.Status != 200 || string(resp.Body) != tc.want {
				t.Errorf("instance %d, %q %q: %d %q, want %q", i, tc.path, tc.raw, resp.Status, resp.Body, tc.want)
			}
		}
	}
}

// oldGuest speaks ABI version 1 only, as a guest built by an SDK before
// version 2 does: it exports gust_handle and not gust_handle_v2, and its
// decoder refuses anything but a version 1 request (a byte too many after
// the body, say). It answers with the path it decoded.
const oldGuest = `#include <stdint.h>
#include <string.h>

static unsigned char req[65536];
static unsigned char resp[65536];

__attribute__((export_name("gust_malloc")))
int gust_malloc(int size) { return size <= (int)sizeof req ? (int)(intptr_t)req : 0; }

static uint32_t rd(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static unsigned char *wr(unsigned char *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; return p + 4; }

// str reads a length-prefixed string at *p, or fails.
static int str(const unsigned char **p, const unsigned char *end, const unsigned char **s, uint32_t *n) {
	if (end - *p < 4) return 0;
	*n = rd(*p);
	*p += 4;
	if ((uint32_t)(end - *p) < *n) return 0;
	*s = *p;
	*p += *n;
	return 1;
}

__attribute__((export_name("gust_handle")))
long long gust_handle(int ptr, int len) {
	const unsigned char *p = (const unsigned char *)(intptr_t)ptr, *end = p + len, *s[3], *x;
	uint32_t n[3], k, count = 0;
	int ok = str(&p, end, &s[0], &n[0]) && str(&p, end, &s[1], &n[1]) && str(&p, end, &s[2], &n[2]) && end - p >= 4;
	if (ok) {
		count = rd(p);
		p += 4;
	}
	for (uint32_t i = 0; ok && i < 2 * count; i++) ok = str(&p, end, &x, &k);
	ok = ok && str(&p, end, &x, &k) && p == end;
	unsigned char *o = wr(resp, ok ? 200 : 500);
	o = wr(o, 0);
	if (ok) {
		o = wr(o, n[1]);
		memcpy(o, s[1], n[1]);
		o += n[1];
	} else {
		o = wr(o, 3);
		memcpy(o, "bad", 3);
		o += 3;
	}
	return (long long)(intptr_t)resp << 32 | (long long)(o - resp);
}

int main(void) { return 0; }
`

// A guest built before ABI version 2 keeps working: the host sends it
// version 1 requests (without the raw path) through gust_handle.
func TestReactorOldABI(t *testing.T) {
	d := newDriver(t)
	inst := start(t, load(t, d, wasmtest.CGuest(t, oldGuest), gust.Spec{}, nil))
	for _, raw := range []string{"/a%2Fb", ""} {
		req := get("/a/b", "x=1")
		req.RawPath = raw
		req.Body = []byte("body")
		if resp := invoke(t, inst, req); resp.Status != 200 || string(resp.Body) != "/a/b" {
			t.Fatalf("raw path %q: %d %q", raw, resp.Status, resp.Body)
		}
	}
}

// A WAGI command gets the escaped path in X_RAW_PATH_INFO beside the
// decoded PATH_INFO, as in WAGI.
func TestWAGIRawPath(t *testing.T) {
	d := newDriver(t)
	inst := start(t, load(t, d, wasmtest.CGuest(t, `#include <stdio.h>
#include <stdlib.h>
int main(void) {
	printf("Content-Type: text/plain\n\n%s|%s", getenv("PATH_INFO"), getenv("X_RAW_PATH_INFO"));
	return 0;
}
`), gust.Spec{}, nil))
	for _, tc := range []struct{ path, raw, want string }{
		{"/a/b", "/a%2Fb", "/a/b|/a%2Fb"},
		{"/a b", "", "/a b|/a%20b"},
	} {
		req := get(tc.path, "")
		req.RawPath = tc.raw
		if resp := invoke(t, inst, req); string(resp.Body) != tc.want {
			t.Errorf("%q %q: %q, want %q", tc.path, tc.raw, resp.Body, tc.want)
		}
	}
}
