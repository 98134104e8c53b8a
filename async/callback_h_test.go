package async

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gustfaas/gust"
)

// Callbacks in flight are bounded: with every slot held by a slow endpoint
// the next callback is dropped (counted, logged) while its status stays
// queryable, and the held one is still delivered.
func TestCallbacksBounded(t *testing.T) {
	old := callbackSlots
	callbackSlots = make(chan struct{}, 1)
	t.Cleanup(func() { callbackSlots = old }) // after the harness closes

	var (
		mu          sync.Mutex
		delivered   []string
		inFlight    int
		maxInFlight int
	)
	release := make(chan struct{})
	entered := make(chan struct{}, 16)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		delivered = append(delivered, r.Header.Get(HeaderInvocationID))
		mu.Unlock()
	}))
	defer cb.Close()
	defer close(release) // before cb.Close, which waits for its handlers

	h := newHarness(t, "", nil)
	h.deploy("echo", gust.Spec{})
	first := h.accept("/async/echo", []byte("1"), map[string]string{HeaderCallbackURL: cb.URL})
	h.waitStatus(first, StatusSucceeded)
	<-entered // the first callback holds the only slot

	dropped := CallbacksDropped()
	second := h.accept("/async/echo", []byte("2"), map[string]string{HeaderCallbackURL: cb.URL})
	s := h.waitStatus(second, StatusSucceeded)
	if s.Response == nil || s.Response.Body != "2" {
		t.Fatalf("second status %+v", s)
	}
	eventually(t, "the second callback to be dropped", func() bool { return CallbacksDropped() > dropped })

	release <- struct{}{}
	eventually(t, "the first callback", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if delivered[0] != first || maxInFlight != 1 {
		t.Fatalf("delivered %v with at most %d at once; want only %s", delivered, maxInFlight, first)
	}
}
