package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	a, path, created, err := LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(b))

	a2, _, created, err := LoadOrCreate(dir)
	if err != nil || created {
		t.Fatalf("second start: created=%v err=%v", created, err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	for _, au := range []*Auth{a, a2} {
		for _, tc := range []struct {
			header string
			want   int
		}{
			{"", 401},
			{"Bearer", 401},
			{"Basic " + tok, 401},
			{"Bearer wrong-token", 401},
			{"Bearer " + tok, 204},
			{"bearer " + tok, 204},
		} {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/v1/functions", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			// The bootstrap admin token is checked before any stored
			// token, so no token bucket is needed here.
			(&Tokens{admin: au}).Require(ScopeRead)(ok).ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Errorf("Authorization %q: status %d, want %d", tc.header, rec.Code, tc.want)
			}
		}
	}
}

// A token file others can read is refused at start, as the master key is:
// serving with it would hide that the whole platform is exposed.
func TestLoadOrCreateRefusesAReadableToken(t *testing.T) {
	dir := t.TempDir()
	_, path, _, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = LoadOrCreate(dir)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v, want a refusal that says to chmod 600", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := LoadOrCreate(dir); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
}
