package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

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
	v := newJWTVerifier(gust.RouteJWT{Secret: "K"}, staticSecrets{"K": hsKey}, time.Hour, func() time.Time { return now }, nil)
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

// Request bodies come from anyone, and decodeInstance stands in for
// jsonschema.UnmarshalJSON: it must make the same value and the same error
// of every input, or a schema would judge a body differently than the
// library's own decoder would have it judged.
func FuzzDecodeInstance(f *testing.F) {
	for _, s := range []string{
		`{"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": 21.5, "unit": "C"}`,
		`{}`, `[]`, ` [ ] `, `{"a":[1,[2,{"b":null}],true,false]}`, `"x"`, `0`, `-0`, `-1.5e-3`,
		`1E+400`, `12345678901234567890123456789`, `0.1`, `{"a":1,"a":2}`,
		`"\u00e9\n\t\"\\\/"`, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800x"`, "\"\xff\xfe\"", "\"é😀\"",
		"{\"\xc3\":1}", `{"k\u0041":"v"}`, "\t\r\n {\"a\" :\t1 } \n",
		``, ` `, `{`, `{"a"}`, `[1,]`, `{} {}`, `{}x`, `01`, `1.`, `.5`, `+1`, `tru`, `nul`, "\"a\x01\"",
		"\xef\xbb\xbf{}", `"\x"`, `"\u12"`, `[` + strings.Repeat("[", 10001) + strings.Repeat("]", 10002),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		got, gotErr := decodeInstance(b)
		if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Fatalf("%q: error %v, library's decoder %v", b, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decoded %#v, library's decoder %#v", b, got, want)
		}
	})
}
