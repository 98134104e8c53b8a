package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
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

// lambdaErr is an error with fields of its own, as process.FunctionError.
type lambdaErr struct{}

func (lambdaErr) Error() string { return "ValueError: bad" }
func (lambdaErr) ErrorFields() map[string]any {
	return map[string]any{"errorMessage": "bad", "errorType": "ValueError", "error": "not this"}
}

// An error that brings fields of its own (a Lambda handler's errorMessage,
// errorType, stackTrace) gets them beside gust's "error" and "code", which
// it cannot override.
func TestWriteAddsErrorFields(t *testing.T) {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/fn/x", nil)
	Write(rec, r, gust.WrapError(gust.EFUNCTION, lambdaErr{}, "function error: ValueError: bad"))
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"error": "function error: ValueError: bad", "code": string(gust.EFUNCTION), "errorMessage": "bad", "errorType": "ValueError"}
	if rec.Code != http.StatusBadGateway || !reflect.DeepEqual(got, want) {
		t.Fatalf("%d %v, want 502 %v", rec.Code, got, want)
	}
}
