package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gustfaas/gust"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		err        error
		status     int
		code       string
		msg        string
		retryAfter string
	}{
		{gust.Errorf(gust.ENOTFOUND, "function %q not found", "x"), 404, "not_found", `function "x" not found`, ""},
		{gust.Errorf(gust.ETOOLARGE, "too big"), 413, "too_large", "too big", ""},
		{gust.Errorf(gust.ETHROTTLED, "busy"), 429, "throttled", "busy", "1"},
		{gust.Errorf(gust.ECAPACITY, "full"), 429, "no_capacity", "full", "1"},
		{gust.Errorf(gust.EFUNCTION, "trap"), 502, "function_error", "trap", ""},
		{gust.Errorf(gust.EOOM, "oom"), 502, "out_of_memory", "oom", ""},
		{gust.Errorf(gust.ETIMEOUT, "slow"), 504, "timeout", "slow", ""},
		{gust.Errorf(gust.EINVALID, "bad"), 400, "invalid", "bad", ""},
		{errors.New("secret infrastructure detail"), 500, "internal", "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, httptest.NewRequest("GET", "/", nil), tt.err)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			var b Body
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if b.Code != tt.code || b.Error != tt.msg {
				t.Fatalf("body = %+v, want code %q error %q", b, tt.code, tt.msg)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Fatalf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
	if Status("") != http.StatusOK {
		t.Fatal("empty code is not OK")
	}
}
