package routes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/gateway"
)

// flipResolver answers each Resolve with the next of its versions, as an
// alias with weights may: a real invoker cannot be made to pick on cue.
type flipResolver struct {
	vs []*gust.Version
	n  int
}

func (f *flipResolver) Resolve(context.Context, string, string) (*gust.Version, error) {
	v := f.vs[f.n%len(f.vs)]
	f.n++
	return v, nil
}

// The handler behind a guard must run the version the guard admitted the
// request under, not resolve the path again.
func TestGuardHandsOverTheAdmittedVersion(t *testing.T) {
	r := New(Config{})
	open := &gust.Version{Function: "fn", Number: 1}
	locked := &gust.Version{Function: "fn", Number: 2, Spec: gust.Spec{Routes: []gust.Route{{Method: "POST", Path: "/", Auth: "token"}}}}
	res := &flipResolver{vs: []*gust.Version{open, locked}}
	var got *gust.Version
	h := r.Guard("/async/", res, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if got = gateway.Resolved(req); got == nil {
			// What accept would do without the hand-over.
			got, _ = res.Resolve(req.Context(), "fn", "")
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "http://x/async/fn", strings.NewReader("{}")))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d, want 202 (version 1 has no routes)", rec.Code)
	}
	if got != open {
		t.Fatalf("handler got version %v, want the admitted version 1", got)
	}
	if res.n != 1 {
		t.Fatalf("path resolved %d times, want once", res.n)
	}
}
