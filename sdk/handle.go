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
	abi.SetHandler(func(r *abi.Request) *abi.Response { return serve(h, r) })
}

// HandleFunc registers f as the function's handler.
func HandleFunc(f func(http.ResponseWriter, *http.Request)) { Handle(http.HandlerFunc(f)) }

// serve adapts one ABI request to net/http and back.
func serve(h http.Handler, r *abi.Request) *abi.Response {
	u := &url.URL{Path: r.Path, RawQuery: r.Query}
	hdr := http.Header(r.Header)
	if hdr == nil {
		hdr = http.Header{}
	}
	// net/http moves Host out of the header map into Request.Host; do the
	// same so handlers written for a real server behave alike.
	host := hdr.Get("Host")
	delete(hdr, "Host")
	var body io.ReadCloser = http.NoBody
	if len(r.Body) > 0 {
		body = io.NopCloser(bytes.NewReader(r.Body))
	}
	req := &http.Request{
		Method:        r.Method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        hdr,
		Body:          body,
		ContentLength: int64(len(r.Body)),
		Host:          host,
		RequestURI:    u.RequestURI(),
	}
	w := &responseWriter{header: http.Header{}}
	h.ServeHTTP(w, req)
	return w.response()
}

// responseWriter buffers a whole response: the ABI returns it in one piece.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
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
	return &abi.Response{Status: status, Header: abi.Header(w.header), Body: body}
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status < 200 || status == http.StatusNoContent || status == http.StatusNotModified)
}
