package gust

import (
	"strings"
	"testing"
	"time"
)

// Stored specs keep validating whatever their jwks audience and leeway
// (the deploy rules are routes.Router.ValidateSpec's); a negative leeway
// never did.
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
			// A version stored before the deploy rules (routes.Router.
			// ValidateSpec) still validates, so a driver that checks the
			// spec at load still loads it; only a negative leeway never did.
			if tc.jwt.Leeway.D() >= 0 {
				if err := jwtRoute(tc.jwt).Validate(); err != nil {
					t.Fatalf("Validate of a stored spec = %v, want nil", err)
				}
				return
			}
			err := jwtRoute(tc.jwt).Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want EINVALID with %q", err, tc.want)
			}
		})
	}
}
