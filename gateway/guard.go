package gateway

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// Guard decides whether a request may reach a function, by the routes of
// its version (package routes implements it).
type Guard interface {
	// Admit runs before the body is read; path is the part after
	// /fn/NAME. A non-nil finish runs once the body is read: it may
	// refuse the body, and sets the identity headers on header, the copy
	// the function is given. A nil finish admits the request as is.
	Admit(r *http.Request, v *gust.Version, path string) (finish func(body []byte, header http.Header) error, err error)
}

// authHeaderPrefix starts the headers that carry a verified identity to
// a function. Clients' copies are always dropped, so a function can trust
// them whether or not it has routes.
const authHeaderPrefix = "X-Gust-Auth-"

func isAuthHeader(k string) bool {
	return len(k) >= len(authHeaderPrefix) && strings.EqualFold(k[:len(authHeaderPrefix)], authHeaderPrefix)
}

func (g *Gateway) admit(r *http.Request, v *gust.Version, path string) (func([]byte, http.Header) error, error) {
	if g.cfg.Guard == nil {
		return nil, nil
	}
	return g.cfg.Guard.Admit(r, v, path)
}

// writeGuardError answers a refusal; a rate limit's error knows how long
// to wait, which replaces httperr's fixed Retry-After.
func writeGuardError(w http.ResponseWriter, r *http.Request, err error) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		w = &retryAfterWriter{ResponseWriter: w, secs: strconv.Itoa(int(math.Ceil(ra.RetryAfter().Seconds())))}
	}
	httperr.Write(w, r, err)
}

type retryAfterWriter struct {
	http.ResponseWriter
	secs string
}

func (w *retryAfterWriter) WriteHeader(status int) {
	w.Header().Set("Retry-After", w.secs)
	w.ResponseWriter.WriteHeader(status)
}
