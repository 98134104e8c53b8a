package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/gustfaas/gust"
)

// The exported helpers below let other front doors (async accept, webhooks)
// turn HTTP into a gust.Request by the same rules as /fn/, so a function
// sees one request shape whichever door it came through.

// ParsePath splits "PREFIX NAME[@REF][/rest]" (such as "/async/hello@3/x")
// into its parts by the rules of /fn/: rest always starts with "/"; a bad
// name or an empty REF is ENOTFOUND.
func ParsePath(prefix, p string) (name, ref, rest string, err error) {
	return parsePath(Prefix + strings.TrimPrefix(p, prefix))
}

// RawPath returns what gust.Request.RawPath holds for r, a request under
// prefix (such as "/async/") whose path ParsePath split into rest: rest as
// the client escaped it ("/a%2Fb" for the rest "/a/b"), or "" when that is
// the default escaping, by the rules of /fn/.
func RawPath(prefix string, r *http.Request, rest string) string {
	return rawRest(r.URL, prefix, rest)
}

// ReadBody reads the request body up to limit bytes into a pooled buffer,
// as /fn/ does: ETOOLARGE over the limit. Call release once the bytes are
// no longer used.
func ReadBody(r *http.Request, limit int64) (body []byte, release func(), err error) {
	return readBody(r, limit)
}

// ForwardHeader returns the headers a function is given for r: a copy
// without hop-by-hop headers, the reserved Authorization-Gust and any
// X-Gust-Auth-* (only a Guard may set those), with Host set.
func ForwardHeader(r *http.Request) http.Header { return forwardHeader(r, 0, nil) }

type resolvedKey struct{}

// WithResolved returns r carrying v, the version a guard in front of a
// door resolved r's path to and admitted it under. The handler behind
// reads it with Resolved instead of resolving again: a second resolve of an
// alias with weights could pick another version, whose routes never saw
// the request.
func WithResolved(r *http.Request, v *gust.Version) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), resolvedKey{}, v))
}

// Resolved returns the version WithResolved put on r, or nil.
func Resolved(r *http.Request) *gust.Version {
	v, _ := r.Context().Value(resolvedKey{}).(*gust.Version)
	return v
}
