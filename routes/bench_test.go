package routes

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gustfaas/gust"
)

// BenchmarkAdmitJWTSchema is the router's own cost per request on a
// route with HS256 jwt auth and a JSON Schema: what the gateway adds on
// top of an unguarded route.
func BenchmarkAdmitJWTSchema(b *testing.B) {
	now := time.Now()
	r := New(Config{Secrets: staticSecrets{"K": hsKey}, Now: func() time.Time { return now }})
	schema := `{"type":"object","required":["sensor","time","value"],"additionalProperties":false,
		"properties":{"sensor":{"type":"string","pattern":"^[a-z0-9-]{1,32}$"},"time":{"type":"string","format":"date-time"},
		"value":{"type":"number","minimum":-100,"maximum":150},"unit":{"enum":["C","F"]}}}`
	v := version(gust.Route{Method: "POST", Path: "/readings", Auth: gust.AuthJWT,
		JWT: &gust.RouteJWT{Secret: "K", Issuer: "i", Audience: "a"}, Schema: json.RawMessage(schema)})
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "s", "iss": "i", "aud": "a", "exp": now.Add(time.Hour).Unix()}).SignedString([]byte(hsKey))
	body := []byte(`{"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": 21.5, "unit": "C"}`)
	req := httptest.NewRequest("POST", "/fn/fn/readings", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		finish, err := r.Admit(req, v, "/readings")
		if err != nil {
			b.Fatal(err)
		}
		if err := finish(body, http.Header{}); err != nil {
			b.Fatal(err)
		}
	}
}
