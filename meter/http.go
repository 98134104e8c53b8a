package meter

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// flushBeforeReport bounds the read-your-writes wait of a usage request.
const flushBeforeReport = 2 * time.Second

// Handler serves GET /v1/usage?function=&since=&until= as a JSON Report.
// since and until are RFC 3339 times or Go durations meaning "that long
// ago"; since defaults to 24h ago and until to now. The caller mounts it
// behind authentication.
func (m *Meter) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httperr.Write(w, r, gust.Errorf(gust.EINVALID, "method %s not allowed on /v1/usage", r.Method))
			return
		}
		now := time.Now()
		q := r.URL.Query()
		since, err := ParseTime(q.Get("since"), now, now.Add(-24*time.Hour))
		if err != nil {
			httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid since: %s", gust.ErrorMessage(err)))
			return
		}
		until, err := ParseTime(q.Get("until"), now, now)
		if err != nil {
			httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid until: %s", gust.ErrorMessage(err)))
			return
		}
		// A user who just ran a burst expects to see it.
		fctx, cancel := context.WithTimeout(r.Context(), flushBeforeReport)
		if err := m.Flush(fctx); err != nil {
			m.log.Debug("usage report without a complete flush", "err", err)
		}
		cancel()
		rep, err := m.Usage(r.Context(), q.Get("function"), since, until)
		if err != nil {
			httperr.Write(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// ParseTime reads s as an RFC 3339 time, or as a Go duration meaning that
// long before now. Empty s yields def.
func ParseTime(s string, now, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, gust.Errorf(gust.EINVALID, "%q is neither an RFC 3339 time nor a duration such as 24h", s)
	}
	if d < 0 {
		return time.Time{}, gust.Errorf(gust.EINVALID, "duration %q must not be negative", s)
	}
	return now.Add(-d), nil
}
