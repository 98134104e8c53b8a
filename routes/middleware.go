package routes

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/gateway"
	"github.com/gustfaas/gust/httperr"
)

// Resolver finds the version a request names; the invoker is one.
type Resolver interface {
	Resolve(ctx context.Context, name, ref string) (*gust.Version, error)
}

// Guard wraps a front door other than /fn/ whose paths are
// "PREFIX NAME[@REF][/...]" (such as POST /async/), so its requests pass
// the same routes as /fn/: without it, a function whose routes demand a
// JWT could be run through that door by anyone. next sees the body again
// and the identity headers, never client-sent X-Gust-Auth-* ones, and
// gets the admitted version from gateway.Resolved. A request the guard
// refuses is answered with a fresh X-Gust-Invocation-Id (Config.NewID), as
// every answer of an invocation is.
func (r *Router) Guard(prefix string, res Resolver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		StripHeaders(req.Header)
		name, ref, path, err := gateway.ParsePath(prefix, req.URL.Path)
		if err != nil {
			next.ServeHTTP(w, req) // next answers the bad path its own way
			return
		}
		v, err := res.Resolve(req.Context(), name, ref)
		if err != nil {
			next.ServeHTTP(w, req)
			return
		}
		req = gateway.WithResolved(req, v)
		finish, err := r.Admit(req, v, path)
		if err != nil {
			r.refuse(w, req, err)
			return
		}
		if finish == nil {
			next.ServeHTTP(w, req)
			return
		}
		body, release, err := gateway.ReadBody(req, v.Spec.MaxBodyBytes)
		if err != nil {
			r.refuse(w, req, err)
			return
		}
		defer release()
		if err := finish(body, req.Header); err != nil {
			r.refuse(w, req, err)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		next.ServeHTTP(w, req)
	})
}

// refuse answers a request the guard turns away. Like every answer of a
// door that invokes, it carries X-Gust-Invocation-Id: a fresh id, since
// the event's own is decided by the handler behind, which never saw the
// request. It ties the answer to what the caller reports, as on /fn.
func (r *Router) refuse(w http.ResponseWriter, req *http.Request, err error) {
	w.Header().Set(gateway.HeaderInvocationID, r.cfg.NewID())
	writeError(w, req, err)
}

// writeError is httperr.Write with the rate limit's own Retry-After.
func writeError(w http.ResponseWriter, req *http.Request, err error) {
	httperr.Write(retryAfterWriter(w, err), req, err)
}
