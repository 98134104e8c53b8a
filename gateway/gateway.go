package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
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

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ServeHTTP implements http.Handler for paths under Prefix.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Tracer.Enabled() {
		g.serveTraced(w, r)
		return
	}
	g.serve(r.Context(), w, r)
}

// serve invokes the function r names under ctx: r's context, or one
// derived from it (a traced request's), passed beside r so that tracing
// does not copy the request.
func (g *Gateway) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(HeaderInvocationID)
	if !ClientInvocationID(id) {
		id = g.cfg.NewID()
	}
	// One allocation for the request and the one-value slices its header
	// shares: the id's (also the response's: neither is changed in place;
	// the name is canonical already) and the host's.
	blk := new(requestBlock)
	blk.id[0] = id
	idValue := blk.id[:]
	w.Header()[HeaderInvocationID] = idValue

	name, ref, path, err := parsePath(r.URL.Path)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	v, err := g.cfg.Invoker.Resolve(ctx, name, ref)
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

	extra := 1 // the invocation id
	if finish != nil {
		extra += guardHeaders
	}
	header := forwardHeader(r, extra, blk.host[:])
	header[HeaderInvocationID] = idValue
	if finish != nil {
		if err := finish(body, header); err != nil {
			httperr.Write(w, r, err)
			return
		}
	}
	req := &blk.req
	*req = gust.Request{
		ID:      id,
		Method:  r.Method,
		Path:    path,
		RawPath: rawRest(r.URL, Prefix, path),
		Query:   r.URL.RawQuery,
		Header:  header,
		Body:    body,
	}
	resp, err := g.cfg.Invoker.Invoke(ctx, v, req)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	writeResponse(w, resp)
}

// requestBlock is what serve allocates for a request, in one piece.
type requestBlock struct {
	req  gust.Request
	id   [1]string
	host [1]string
}

// parsePath splits "/fn/NAME[@REF][/rest]" into its parts. rest always
// starts with "/".
func parsePath(p string) (name, ref, rest string, err error) {
	s := strings.TrimPrefix(p, Prefix)
	seg := s
	rest = "/"
	if i := strings.IndexByte(s, '/'); i >= 0 {
		seg, rest = s[:i], s[i:]
	}
	name, ref, hasRef := strings.Cut(seg, "@")
	if err := gust.ValidateName(name); err != nil {
		return "", "", "", gust.Errorf(gust.ENOTFOUND, "no function %q: %s", name, gust.ErrorMessage(err))
	}
	if hasRef && ref == "" {
		return "", "", "", gust.Errorf(gust.ENOTFOUND, "empty version or alias after '@' in %q", seg)
	}
	if err := checkSegments(rest); err != nil {
		return "", "", "", err
	}
	return name, ref, rest, nil
}

// checkSegments refuses (EINVALID) a decoded path with a "." or ".."
// segment or an empty one before its end ("//"). Routes match the path as
// given, but a function whose router cleans paths would serve
// "/public/../admin" or "//admin" as "/admin", past the auth the "/admin"
// route demands. Refusing rather than cleaning keeps one path for both:
// browsers and HTTP clients resolve dot segments before sending, so only
// a hand-made request ("%2E%2E", "%2F..") carries one, and route patterns
// cannot hold them either (gust.ValidateRoutePath). A trailing "/" stays.
func checkSegments(rest string) error {
	s := rest[1:]
	for s != "" {
		seg, after, more := strings.Cut(s, "/")
		switch {
		case seg == "." || seg == "..":
			return gust.Errorf(gust.EINVALID, "invalid path %q: segment %q (dot segments are refused, not resolved)", rest, seg)
		case seg == "" && more:
			return gust.Errorf(gust.EINVALID, "invalid path %q: empty segment (\"//\")", rest)
		}
		s = after
	}
	return nil
}

// rawRest returns gust.Request.RawPath for a request to u under prefix,
// whose path parsePath split into rest: the part of u's escaped path after
// PREFIX NAME[@REF] when the client escaped it otherwise than by default
// (a %2F), else "". The raw tail is used only if it decodes to rest (a
// name segment holding a %2F would shift it), as net/url checks RawPath
// against Path.
func rawRest(u *url.URL, prefix, rest string) string {
	raw := u.RawPath
	if raw == "" {
		return "" // the usual case: nothing escaped otherwise than by default
	}
	s, ok := strings.CutPrefix(raw, prefix)
	if !ok {
		return ""
	}
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return ""
	}
	s = s[i:]
	if p, err := url.PathUnescape(s); err != nil || p != rest {
		return ""
	}
	if s == (&url.URL{Path: rest}).EscapedPath() {
		return ""
	}
	return s
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
		// Drivers hand over canonical names as a rule; CanonicalHeaderKey
		// returns those as they are, without allocating.
		k = http.CanonicalHeaderKey(k)
		if !returned(k) {
			continue
		}
		h[k] = vs
	}
	status := resp.Status
	if status < 100 || status > 999 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.Body)
}

// guardHeaders is room for the identity headers a Guard's finish adds
// (X-Gust-Auth-Method, -Subject, -Claims, -Route): made at the right size,
// the map is not grown again on every guarded request.
const guardHeaders = 4

// forwardHeader returns the headers a function is given for r: those of r
// without hop-by-hop headers, the reserved Authorization-Gust and any
// X-Gust-Auth-* (only a Guard may set those), with Host set; room for extra
// more. The value slices are r's own, shared: nothing changes them in place.
// net/http hands over canonical names (a name it cannot canonicalize is kept
// as sent, and matches none of the names dropped here, as with Header.Del).
// host, if not nil, is a one-value slice to hold Host's value (net/http
// keeps it out of r.Header, so it is added on nearly every request).
func forwardHeader(r *http.Request, extra int, host []string) http.Header {
	header := make(http.Header, len(r.Header)+1+extra)
	for k, vs := range r.Header {
		if isHopHeader(k) || k == "Authorization-Gust" || isAuthHeader(k) {
			continue
		}
		header[k] = vs
	}
	if v := header["Host"]; (len(v) == 0 || v[0] == "") && r.Host != "" {
		if len(host) != 1 {
			host = make([]string, 1)
		}
		host[0] = r.Host
		header["Host"] = host
	}
	return header
}

// isHopHeader reports whether the canonical name k is a connection-scoped
// header, never forwarded either way.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// returned reports whether a function's response header named k (canonical)
// goes to the client: hop-by-hop headers do not, Content-Length is net/http's
// to set, and the invocation id is the gateway's.
func returned(k string) bool {
	return !isHopHeader(k) && k != "Content-Length" && k != HeaderInvocationID
}

// ClientInvocationID reports whether id, sent by a client in
// X-Gust-Invocation-Id, may name the invocation: 1 to 64 letters, digits,
// '_' or '-'. The id becomes a NATS subject token (the function's logs) and
// a key in usage records and traces, so anything else (a '.', a space, a
// wildcard) is replaced by a fresh id rather than passed on.
func ClientInvocationID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
