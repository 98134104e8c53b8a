package routes

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gustfaas/gust"
)

// staticSecrets hands out fixed values: the fuzz targets test parsing,
// and the secret store cannot be made to misparse a token.
type staticSecrets map[string]string

func (s staticSecrets) Values(_ context.Context, names []string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		v, ok := s[n]
		if !ok {
			return nil, gust.Errorf(gust.ENOTFOUND, "no secret %s", n)
		}
		out[n] = v
	}
	return out, nil
}

func (s staticSecrets) Exists(ctx context.Context, names []string) error {
	_, err := s.Values(ctx, names)
	return err
}

// The JWT path reads attacker-chosen tokens: it must refuse anything not
// signed with the key, never panic, and never accept a token it did not
// see signed.
func FuzzJWTVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a", "exp": now.Add(time.Hour).Unix()}).SignedString([]byte(hsKey))
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	f.Add("....")
	f.Add("")
	v := newJWTVerifier(gust.RouteJWT{Secret: "K"}, staticSecrets{"K": hsKey}, time.Hour, func() time.Time { return now })
	f.Fuzz(func(t *testing.T, tok string) {
		vt, err := v.verify(context.Background(), tok)
		if err != nil {
			if gust.ErrorCode(err) != gust.EUNAUTHORIZED {
				t.Fatalf("error %v is not unauthorized", err)
			}
			return
		}
		// Accepted: it must be a token we signed, with an expiry.
		var claims jwt.MapClaims
		if json.Unmarshal(vt.claims, &claims) != nil || claims["exp"] == nil {
			t.Fatalf("accepted %q with claims %s", tok, vt.claims)
		}
		if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(hsKey), nil }, jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
			t.Fatalf("accepted %q, which the library alone refuses: %v", tok, err)
		}
	})
}

// JWKS documents come from the secret store, written by users: the parser
// must refuse what it cannot use and never panic.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseJWKS(b)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
	})
}

// Route paths come from manifests, request paths from anyone.
func FuzzMatchPath(f *testing.F) {
	f.Add("/items/{id}", "/items/42")
	f.Add("/files/{rest...}", "/files/a/b")
	f.Add("/", "/")
	f.Add("/a//b", "//")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		segs, err := gust.ValidateRoutePath(pattern)
		if err != nil {
			return
		}
		if len(path) == 0 || path[0] != '/' {
			path = "/" + path
		}
		if pattern == path && !matchPath(segs, path) {
			t.Fatalf("pattern %q does not match itself", pattern)
		}
	})
}
