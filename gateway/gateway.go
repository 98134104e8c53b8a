package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
	"github.com/gustfaas/gust/trace"
)

// HeaderInvocationID carries the invocation id on every invocation response.
const HeaderInvocationID = "X-Gust-Invocation-Id"

// Invoker is what the gateway needs from the invoker.
type Invoker interface {
	Resolve(ctx context.Context, name, ref string) (*gust.Version, error)
	Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error)
}

// Config configures a Gateway.
type Config struct {
	Invoker Invoker
	NewID   func() string
	Logger  *slog.Logger
	// Tracer records a server span per request and hands the invoker its
	// context; nil or one without an endpoint records nothing.
	Tracer *trace.Tracer
	// Guard checks a function's routes (auth, rate limit, body schema);
	// nil admits everything.
	Guard Guard
}

// Gateway serves /fn/.
type Gateway struct {
	cfg Config
	log *slog.Logger
}

// New returns a Gateway.
func New(cfg Config) *Gateway {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Gateway{cfg: cfg, log: cfg.Logger}
}

// Prefix is the path prefix the gateway serves.
const Prefix = "/fn/"

// hopHeaders are connection-scoped and never forwarded either way.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ServeHTTP implements http.Handler for paths under Prefix.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Tracer.Enabled() {
		g.serveTraced(w, r)
		return
	}
	g.serve(w, r)
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(HeaderInvocationID)
	if id == "" || len(id) > 64 {
		id = g.cfg.NewID()
	}
	w.Header().Set(HeaderInvocationID, id)

	name, ref, path, err := parsePath(r.URL.Path)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	v, err := g.cfg.Invoker.Resolve(r.Context(), name, ref)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	noteVersion(w, v)
	finish, err := g.admit(r, v, path)
	if err != nil {
		writeGuardError(w, r, err)
		return
	}
	body, release, err := readBody(r, v.Spec.MaxBodyBytes)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	defer release()

	header := r.Header.Clone()
	for _, h := range hopHeaders {
		header.Del(h)
	}
	header.Del("Authorization-Gust") // reserved
	stripAuthHeaders(header)
	if header.Get("Host") == "" && r.Host != "" {
		header.Set("Host", r.Host)
	}
	header.Set(HeaderInvocationID, id)
	if finish != nil {
		if err := finish(body, header); err != nil {
			httperr.Write(w, r, err)
			return
		}
	}
	req := &gust.Request{
		ID:     id,
		Method: r.Method,
		Path:   path,
		Query:  r.URL.RawQuery,
		Header: header,
		Body:   body,
	}
	resp, err := g.cfg.Invoker.Invoke(r.Context(), v, req)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	writeResponse(w, resp)
}

// parsePath splits "/fn/NAME[@REF][/rest]" into its parts. rest always
// starts with "/".
func parsePath(p string) (name, ref, rest string, err error) {
	s := strings.TrimPrefix(p, Prefix)
	seg, rest, _ := strings.Cut(s, "/")
	rest = "/" + rest
	name, ref, hasRef := strings.Cut(seg, "@")
	if err := gust.ValidateName(name); err != nil {
		return "", "", "", gust.Errorf(gust.ENOTFOUND, "no function %q: %s", name, gust.ErrorMessage(err))
	}
	if hasRef && ref == "" {
		return "", "", "", gust.Errorf(gust.ENOTFOUND, "empty version or alias after '@' in %q", seg)
	}
	return name, ref, rest, nil
}

// readBody reads the request body up to limit bytes into a pooled buffer.
func readBody(r *http.Request, limit int64) ([]byte, func(), error) {
	if r.ContentLength > limit {
		return nil, func() {}, gust.Errorf(gust.ETOOLARGE, "request body of %d bytes is over the function's limit of %d bytes", r.ContentLength, limit)
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, func() {}, nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	release := func() {
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		release()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, func() {}, gust.Errorf(gust.ETOOLARGE, "request body is over the server's limit of %d bytes", mbe.Limit)
		}
		return nil, func() {}, gust.WrapError(gust.EINVALID, err, "reading the request body")
	}
	if n > limit {
		release()
		return nil, func() {}, gust.Errorf(gust.ETOOLARGE, "request body is over the function's limit of %d bytes", limit)
	}
	return buf.Bytes(), release, nil
}

func writeResponse(w http.ResponseWriter, resp *gust.Response) {
	h := w.Header()
	for k, vs := range resp.Header {
		if isHop(k) || strings.EqualFold(k, HeaderInvocationID) {
			continue
		}
		h[http.CanonicalHeaderKey(k)] = vs
	}
	status := resp.Status
	if status < 100 || status > 999 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.Body)
}

func isHop(k string) bool {
	for _, h := range hopHeaders {
		if strings.EqualFold(k, h) {
			return true
		}
	}
	return strings.EqualFold(k, "Content-Length")
}
