package gust

import (
	"strings"
	"testing"
	"time"
)

// A provider's JWKS signs tokens for every app it serves: a jwks route
// must say which audience is its own, and leeway stays a clock skew.
func TestValidateRoutesJWT(t *testing.T) {
	jwtRoute := func(j RouteJWT) Spec {
		s := Spec{Routes: []Route{{Name: "orders", Path: "/orders", Auth: AuthJWT, JWT: &j}}}.WithDefaults()
		return s
	}
	for name, tc := range map[string]struct {
		jwt  RouteJWT
		want string // "" valid
	}{
		"jwks without audience":  {RouteJWT{JWKS: "IDP"}, "route 1 (orders): jwt.jwks needs jwt.audience"},
		"jwks with issuer only":  {RouteJWT{JWKS: "IDP", Issuer: "https://idp.example.com/"}, "jwt.jwks needs jwt.audience"},
		"jwks with audience":     {RouteJWT{JWKS: "IDP", Audience: "orders-api"}, ""},
		"hs256 without audience": {RouteJWT{Secret: "K"}, ""},
		"leeway at the bound":    {RouteJWT{Secret: "K", Leeway: Duration(MaxJWTLeeway)}, ""},
		"leeway over the bound":  {RouteJWT{Secret: "K", Leeway: Duration(MaxJWTLeeway + time.Second)}, "route 1 (orders): jwt leeway 5m1s: want 0 to 5m0s"},
		"leeway an hour":         {RouteJWT{JWKS: "IDP", Audience: "a", Leeway: Duration(time.Hour)}, "jwt leeway 1h0m0s"},
		"leeway negative":        {RouteJWT{Secret: "K", Leeway: Duration(-time.Second)}, "jwt leeway -1s"},
	} {
		t.Run(name, func(t *testing.T) {
			// A version stored before these rules still validates, so
			// a driver that checks the spec at load still loads it.
			if err := jwtRoute(tc.jwt).Validate(); err != nil && tc.jwt.Leeway.D() >= 0 {
				t.Fatalf("Validate of a stored spec = %v, want nil", err)
			}
			err := jwtRoute(tc.jwt).ValidateForDeploy()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ValidateForDeploy = %v, want EINVALID with %q", err, tc.want)
			}
		})
	}
}
