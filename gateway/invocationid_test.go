package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gustfaas/gust"
)

// echoID is an invoker that answers with the invocation id it was given.
type echoID struct{}

func (echoID) Resolve(_ context.Context, name, _ string) (*gust.Version, error) {
	return &gust.Version{Function: name, Number: 1}, nil
}

func (echoID) Invoke(_ context.Context, _ *gust.Version, req *gust.Request) (*gust.Response, error) {
	return &gust.Response{Status: 200, Body: []byte(req.ID)}, nil
}

// A client may name its invocation, but only with an id that is safe as a
// NATS subject token and a record key; anything else is replaced.
func TestClientInvocationID(t *testing.T) {
	g := New(Config{Invoker: echoID{}, NewID: func() string { return "fresh" }})
	for _, tc := range []struct{ sent, want string }{
		{"", "fresh"},
		{"order-42_retry", "order-42_retry"},
		{"x.y", "fresh"},
		{"a b", "fresh"},
		{"a*", "fresh"},
		{"a>", "fresh"},
		{"é", "fresh"},
		{string(make([]byte, 65)), "fresh"},
	} {
		r := httptest.NewRequest("GET", "http://example.test/fn/hello", nil)
		if tc.sent != "" {
			r.Header.Set(HeaderInvocationID, tc.sent)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("sent %q: status %d: %s", tc.sent, w.Code, w.Body)
		}
		if got := w.Header().Get(HeaderInvocationID); got != tc.want || w.Body.String() != tc.want {
			t.Errorf("sent %q: header %q, function saw %q, want %q", tc.sent, got, w.Body.String(), tc.want)
		}
	}
}
