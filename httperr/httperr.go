package httperr

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gustfaas/gust"
)

// Status returns the HTTP status for an application error code.
func Status(code string) int {
	switch code {
	case "":
		return http.StatusOK
	case gust.ENOTFOUND:
		return http.StatusNotFound
	case gust.EINVALID:
		return http.StatusBadRequest
	case gust.ECONFLICT:
		return http.StatusConflict
	case gust.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case gust.ETHROTTLED, gust.ECAPACITY:
		return http.StatusTooManyRequests
	case gust.ETIMEOUT:
		return http.StatusGatewayTimeout
	case gust.EOOM, gust.EFUNCTION:
		return http.StatusBadGateway
	case gust.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case gust.EFORBIDDEN:
		return http.StatusForbidden
	case gust.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Body is the JSON error shape.
type Body struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// RetryAfter is the Retry-After a throttled caller is told to wait.
const RetryAfter = 1 * time.Second

// Write answers err as JSON with the status its code maps to. Internal
// errors are logged with their cause and answered with a generic message.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	code := gust.ErrorCode(err)
	status := Status(code)
	if code == gust.EINTERNAL {
		slog.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if code == gust.ETHROTTLED || code == gust.ECAPACITY {
		h.Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
	}
	if code == gust.EUNAUTHORIZED {
		h.Set("WWW-Authenticate", `Bearer realm="gust"`)
	}
	w.WriteHeader(status)
	var f fielder
	if code != gust.EINTERNAL && errors.As(err, &f) {
		body := map[string]any{}
		for k, v := range f.ErrorFields() {
			body[k] = v
		}
		body["error"], body["code"] = gust.ErrorMessage(err), code
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	_ = json.NewEncoder(w).Encode(Body{Error: gust.ErrorMessage(err), Code: code})
}

// fielder is an error that adds fields to its JSON body beside "error"
// and "code": a Lambda function's errorMessage, errorType and stackTrace
// (see process.FunctionError), as a Lambda caller expects them.
type fielder interface{ ErrorFields() map[string]any }

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
