package routes

import (
	"context"
	"encoding/json"
	"fmt"
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

// Every refusal of a guard in front of /async names an invocation id, as
// every answer of an invocation does: a route that does not match, a
// missing token, a rate limit, a body over the limit, a body the schema
// refuses. The handler behind never runs for them.
func TestGuardRefusalsCarryAnInvocationID(t *testing.T) {
	ids := 0
	r := New(Config{NewID: func() string { ids++; return fmt.Sprintf("guard-%d", ids) }})
	v := &gust.Version{Function: "fn", Number: 1, Spec: gust.Spec{MaxBodyBytes: 64, Routes: []gust.Route{
		{Method: "POST", Path: "/", RateLimit: &gust.RateLimit{RPS: 0.001, Burst: 1}, Schema: json.RawMessage(`{"type":"object","required":["a"]}`)},
		{Method: "POST", Path: "/open", Schema: json.RawMessage(`{"type":"object"}`)},
		{Method: "POST", Path: "/locked", Auth: gust.AuthToken},
	}}}
	ran := 0
	h := r.Guard("/async/", &flipResolver{vs: []*gust.Version{v}}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ran++
		w.Header().Set(gateway.HeaderInvocationID, "accepted")
		w.WriteHeader(http.StatusAccepted)
	}))
	for i, tc := range []struct {
		path, body string
		status     int
	}{
		{"/async/fn/nowhere", "{}", http.StatusNotFound},
		{"/async/fn/locked", "{}", http.StatusServiceUnavailable}, // no token store: 503, as documented
		{"/async/fn/open", strings.Repeat(" ", 65), http.StatusRequestEntityTooLarge},
		{"/async/fn", `{"b":1}`, http.StatusBadRequest},      // takes the one token of the bucket
		{"/async/fn", `{"a":1}`, http.StatusTooManyRequests}, // the bucket is empty
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "http://x"+tc.path, strings.NewReader(tc.body)))
		want := fmt.Sprintf("guard-%d", i+1)
		if rec.Code != tc.status || rec.Header().Get(gateway.HeaderInvocationID) != want {
			t.Errorf("%s %s: status %d, id %q; want %d and %q (%s)", tc.path, tc.body, rec.Code, rec.Header().Get(gateway.HeaderInvocationID), tc.status, want, rec.Body)
		}
	}
	if ran != 0 {
		t.Fatalf("the handler ran %d times", ran)
	}
	// An admitted request gets its id from the handler, not the guard.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "http://x/async/fn/open", strings.NewReader("{}")))
	if rec.Code != http.StatusAccepted || rec.Header().Get(gateway.HeaderInvocationID) != "accepted" {
		t.Fatalf("status %d id %q", rec.Code, rec.Header().Get(gateway.HeaderInvocationID))
	}
}

// Without Config.NewID a refusal still gets an id in the invoker's format.
func TestGuardDefaultInvocationID(t *testing.T) {
	r := New(Config{})
	v := &gust.Version{Function: "fn", Number: 1, Spec: gust.Spec{Routes: []gust.Route{{Path: "/only"}}}}
	h := r.Guard("/async/", &flipResolver{vs: []*gust.Version{v}}, http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "http://x/async/fn/other", nil))
	if id := rec.Header().Get(gateway.HeaderInvocationID); rec.Code != http.StatusNotFound || len(id) != 32 || !gateway.ClientInvocationID(id) {
		t.Fatalf("status %d id %q", rec.Code, id)
	}
}
