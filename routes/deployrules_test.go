package routes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// A provider's JWKS signs tokens for every app it serves: a jwks route
// deployed now must say which audience is its own, and leeway stays a
// clock skew. These are deploy rules (stored versions still load: see the
// root package's TestValidateRoutesJWT).
func TestValidateSpecJWTDeployRules(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ecPub[1:33]), "y": b64(ecPub[33:])},
	}})
	r := New(Config{Secrets: staticSecrets{"K": hsKey, "IDP": string(jwks)}, Logger: slog.New(slog.DiscardHandler)})
	spec := func(j gust.RouteJWT) gust.Spec {
		return gust.Spec{Routes: []gust.Route{{Name: "orders", Path: "/orders", Auth: gust.AuthJWT, JWT: &j}}}.WithDefaults()
	}
	for name, tc := range map[string]struct {
		jwt  gust.RouteJWT
		want string // "" valid
	}{
		"jwks without audience":  {gust.RouteJWT{JWKS: "IDP"}, "route 1 (orders): jwt.jwks needs jwt.audience"},
		"jwks with issuer only":  {gust.RouteJWT{JWKS: "IDP", Issuer: "https://idp.example.com/"}, "jwt.jwks needs jwt.audience"},
		"jwks with audience":     {gust.RouteJWT{JWKS: "IDP", Audience: "orders-api"}, ""},
		"hs256 without audience": {gust.RouteJWT{Secret: "K"}, ""},
		"leeway at the bound":    {gust.RouteJWT{Secret: "K", Leeway: gust.Duration(gust.MaxJWTLeeway)}, ""},
		"leeway over the bound":  {gust.RouteJWT{Secret: "K", Leeway: gust.Duration(gust.MaxJWTLeeway + time.Second)}, "route 1 (orders): jwt leeway 5m1s: want 0 to 5m0s"},
		"leeway an hour":         {gust.RouteJWT{JWKS: "IDP", Audience: "a", Leeway: gust.Duration(time.Hour)}, "jwt leeway 1h0m0s"},
	} {
		t.Run(name, func(t *testing.T) {
			err := r.ValidateSpec(context.Background(), spec(tc.jwt))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ValidateSpec = %v, want EINVALID with %q", err, tc.want)
			}
		})
	}
}
