package routes

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// lockedBuffer is a log destination safe to read while the verifier's
// background read may write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(level string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, "level="+level) {
			out = append(out, line)
		}
	}
	return out
}

// A route serving stale JWT keys because the secret store cannot be read
// says so in the router's log: one warning per failure of the store (not
// one per request, nor per retry), naming the function, route and
// secret; again for the next failure once the store has recovered.
func TestJWTStaleKeysLogged(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	sec := &flakySecrets{vals: map[string]string{"K": hsKey}}
	logs := &lockedBuffer{}
	r := New(Config{Secrets: sec, Now: c.now, KeyTTL: 30 * time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	v := &gust.Version{Function: "fn", Number: 3, Spec: gust.Spec{Routes: []gust.Route{
		{Path: "/", Auth: gust.AuthJWT, JWT: &gust.RouteJWT{Secret: "K", Issuer: "i", Audience: "a"}},
	}}}
	tok := signHS(t, hsKey, hsClaims(c))
	admit := func() {
		t.Helper()
		req := httptest.NewRequest("GET", "http://x/fn/fn/", nil).WithContext(ctx(t))
		req.Header.Set("Authorization", "Bearer "+tok)
		if _, err := r.Admit(req, v, "/"); err != nil {
			t.Fatalf("admit: %v", err)
		}
	}
	admit()
	sec.set(func(s *flakySecrets) { s.err = errors.New("nats: timeout") })
	for range 4 { // past the TTL, then three retries of the failing store
		c.add(30 * time.Second)
		for range 5 {
			admit()
		}
	}
	warns := logs.lines("WARN")
	if len(warns) != 1 {
		t.Fatalf("%d warnings for one outage, want 1:\n%s", len(warns), strings.Join(warns, "\n"))
	}
	for _, want := range []string{"last good keys", "function=fn", "version=3", "route=", "secret=K", "nats: timeout"} {
		if !strings.Contains(warns[0], want) {
			t.Errorf("warning %q does not contain %q", warns[0], want)
		}
	}
	// The store back: said once; a later failure is a new outage.
	sec.set(func(s *flakySecrets) { s.err = nil })
	c.add(keyRetryEvery)
	admit()
	if n := len(logs.lines("INFO")); n != 1 {
		t.Fatalf("%d info lines after the store came back, want 1", n)
	}
	sec.set(func(s *flakySecrets) { s.err = errors.New("nats: timeout") })
	c.add(31 * time.Second)
	admit()
	if n := len(logs.lines("WARN")); n != 2 {
		t.Fatalf("%d warnings after a second outage, want 2", n)
	}
}
