package routes

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// RetryAfter returns how long the caller of a throttled request should
// wait, if err says (a rate limit does), else 0.
func RetryAfter(err error) time.Duration {
	var t interface{ RetryAfter() time.Duration }
	if errors.As(err, &t) {
		return t.RetryAfter()
	}
	return 0
}

// retryAfterWriter returns w, or, for an error that knows its wait, a
// writer that puts that wait in Retry-After (rounded up to whole seconds,
// as the header wants) when the status is written.
func retryAfterWriter(w http.ResponseWriter, err error) http.ResponseWriter {
	d := RetryAfter(err)
	if d <= 0 {
		return w
	}
	return &retryWriter{ResponseWriter: w, secs: strconv.Itoa(int(math.Ceil(d.Seconds())))}
}

type retryWriter struct {
	http.ResponseWriter
	secs string
}

func (rw *retryWriter) WriteHeader(status int) {
	rw.Header().Set("Retry-After", rw.secs)
	rw.ResponseWriter.WriteHeader(status)
}

// WriteError answers err as httperr.Write does, with the Retry-After of
// a rate limit when err carries one.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, err)
}
