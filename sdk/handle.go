package sdk

import (
	"bytes"
	"io"
	"net/http"
	"net/url"

	"github.com/gustfaas/gust/sdk/internal/abi"
)

// Handle registers h as the function's handler, replacing any earlier one.
// Call it from init (see the package doc).
func Handle(h http.Handler) {
	a := &adapter{h: h}
	abi.SetHostLiftingHandler(a.serve)
}

// HandleFunc registers f as the function's handler.
func HandleFunc(f func(http.ResponseWriter, *http.Request)) { Handle(http.HandlerFunc(f)) }

// adapter turns ABI requests into net/http ones. It reuses one
// http.Request, url.URL, body reader and ResponseWriter from call to call:
// every heap allocation in a warm guest costs microseconds, and net/http
// already tells handlers not to use the Request or the ResponseWriter after
// ServeHTTP returns. A guest runs one call at a time, so nothing here is
// shared between calls in flight.
type adapter struct {
	h    http.Handler
	req  http.Request
	url  url.URL
	body bodyReader
	w    responseWriter
}

// serve adapts one ABI request to net/http and back.
func (a *adapter) serve(r *abi.Request) *abi.Response {
	a.url = url.URL{Path: r.Path, RawPath: r.RawPath, RawQuery: r.Query}
	hdr := http.Header(r.Header)
	if hdr == nil {
		hdr = http.Header{}
	}
	// net/http moves Host out of the header map into Request.Host; do the
	// same so handlers written for a real server behave alike.
	host, lifted := abi.LiftedHost(r)
	if !lifted {
		if v := hdr["Host"]; len(v) > 0 {
			host = v[0]
			delete(hdr, "Host")
		}
	}
	var body io.ReadCloser = http.NoBody
	if len(r.Body) > 0 {
		a.body.Reset(r.Body)
		body = &a.body
	}
	a.req = http.Request{
		Method:        r.Method,
		URL:           &a.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        hdr,
		Body:          body,
		ContentLength: int64(len(r.Body)),
		Host:          host,
		RequestURI:    requestURI(&a.url, r),
	}
	a.w.reset()
	a.h.ServeHTTP(&a.w, &a.req)
	resp := a.w.response()
	// The body aliases the host's buffer: let go of it. The rest of the
	// request stays until the next call overwrites it.
	a.body.Reset(nil)
	return resp
}

// requestURI is u.RequestURI() for a URL made from r, without its
// concatenation when the path needs no escaping.
func requestURI(u *url.URL, r *abi.Request) string {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery == "" {
		return p
	}
	if p == r.Path && u.RawQuery == r.Query {
		return abi.PathQuery(r)
	}
	return p + "?" + u.RawQuery
}

// bodyReader is the request body: a bytes.Reader that is also a Closer,
// kept in the adapter so a call needs no reader or NopCloser of its own.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

// responseWriter buffers a whole response: the ABI returns it in one piece.
// The adapter reuses it, and the response it makes, from call to call.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	resp   abi.Response
}

// reset readies w for the next call, keeping its header map (unless a
// response made it large: maps never shrink) and its body's memory.
func (w *responseWriter) reset() {
	if w.header == nil || len(w.header) > 64 {
		w.header = http.Header{}
	} else {
		clear(w.header)
	}
	w.status = 0
	w.body.Reset()
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	// Like net/http: the first final status wins, informational ones are not
	// part of the buffered answer.
	if w.status != 0 || code >= 100 && code < 200 {
		return
	}
	w.status = code
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

func (w *responseWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.WriteString(s)
}

func (w *responseWriter) response() *abi.Response {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	body := w.body.Bytes()
	if _, set := w.header["Content-Type"]; !set && len(body) > 0 && bodyAllowed(status) {
		w.header.Set("Content-Type", http.DetectContentType(body[:min(len(body), 512)]))
	}
	w.resp = abi.Response{Status: status, Header: abi.Header(w.header), Body: body}
	return &w.resp
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status < 200 || status == http.StatusNoContent || status == http.StatusNotModified)
}
