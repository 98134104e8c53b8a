package node

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// validateExample returns examples/validate's manifest and its built code.
func validateExample(t testing.TB) (*client.Manifest, []byte) {
	t.Helper()
	dir := filepath.Join(wasmtest.Root(), "examples", "validate")
	m, err := client.LoadManifest(filepath.Join(dir, "gust.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile(wasmtest.GoGuest(t, string(src)))
	if err != nil {
		t.Fatal(err)
	}
	return m, code
}

const goodReading = `{"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": 21.5, "unit": "C"}`

func doH(t testing.TB, method, url, body string, h http.Header) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return result{resp.StatusCode, resp.Header, []byte(b.String())}
}

// TestValidateExample deploys examples/validate as its manifest declares
// and shows the schema at work: a valid reading runs the function, an
// invalid one is 400 with the schema's errors and never reaches it.
func TestValidateExample(t *testing.T) {
	n, c := testNode(t, "", nil)
	m, code := validateExample(t)
	spec := m.Spec
	spec.MaxConcurrency = 1 // one instance, so its count shows every call that ran
	deploy(t, c, m.Name, spec, code)
	base := n.URL() + "/fn/" + m.Name

	r := do(t, "POST", base+"/readings", []byte(goodReading))
	if r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"count":1`) {
		t.Fatalf("valid reading: %d %s", r.status, r.body)
	}
	for body, want := range map[string]string{
		`{"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": 999}`:  "/value",
		`{"sensor": "Bad Name!", "time": "2026-01-02T15:04:05Z", "value": 1}`:       "/sensor",
		`{"sensor": "greenhouse-1", "time": "yesterday", "value": 1}`:               "date-time",
		`{"sensor": "greenhouse-1", "value": 1}`:                                    "time",
		`{"sensor": "g", "time": "2026-01-02T15:04:05Z", "value": 1, "extra": "x"}`: "extra",
		`[1, 2`: "not valid JSON",
	} {
		r := do(t, "POST", base+"/readings", []byte(body))
		b := wantError(t, r, http.StatusBadRequest, gust.EINVALID)
		if !strings.Contains(b.Error, want) {
			t.Errorf("body %s: error %q does not mention %q", body, b.Error, want)
		}
		if r.header.Get("X-Gust-Invocation-Id") == "" {
			t.Error("a refused body has no invocation id")
		}
	}
	r = do(t, "GET", base+"/stats", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `{"greenhouse-1":1}`) {
		t.Fatalf("stats after one valid and six invalid readings: %d %s (the function must have run once)", r.status, r.body)
	}
	// No route: 404, whatever the function would have said.
	wantError(t, do(t, "GET", base+"/readings", nil), http.StatusNotFound, gust.ENOTFOUND)
	wantError(t, do(t, "GET", base+"/other", nil), http.StatusNotFound, gust.ENOTFOUND)

	// A bad schema fails the deploy and stores nothing.
	bad := spec
	bad.Routes = []gust.Route{{Path: "/", Schema: json.RawMessage(`{"type": "no-such-type"}`)}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Deploy(ctx, "validate-bad", bad, "v.wasm", strings.NewReader(string(code)))
	if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("deploy with a bad schema: %v, want invalid naming the schema", err)
	}
}

func hs256(t testing.TB, key string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const sensorKey = "sensor-signing-key-of-at-least-32-bytes"

// guardedSpec is the example's spec with a JWT on readings, an API key
// and a rate limit on stats, and a token route.
func guardedSpec(m *client.Manifest) gust.Spec {
	spec := m.Spec
	spec.Routes = []gust.Route{
		{Name: "readings", Method: "POST", Path: "/readings", Auth: gust.AuthJWT,
			JWT:    &gust.RouteJWT{Secret: "SENSOR_JWT_KEY", Issuer: "https://id.example", Audience: "sensors"},
			Schema: m.Routes[0].Schema},
		{Name: "stats", Method: "GET", Path: "/stats", Auth: gust.AuthAPIKey, RateLimit: &gust.RateLimit{RPS: 0.5, Burst: 2}},
		{Name: "admin-stats", Method: "GET", Path: "/admin/stats", Auth: gust.AuthToken},
	}
	return spec
}

func TestRouteAuth(t *testing.T) {
	n, c := testNode(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, code := validateExample(t)
	spec := guardedSpec(m)

	// The JWT key must exist before a route can name it.
	if _, err := c.Deploy(ctx, "sensors", spec, "v.wasm", strings.NewReader(string(code))); gust.ErrorCode(err) != gust.EINVALID {
		t.Fatalf("deploy naming a missing secret: %v, want invalid", err)
	}
	if _, err := c.SetSecret(ctx, "SENSOR_JWT_KEY", []byte(sensorKey)); err != nil {
		t.Fatal(err)
	}
	deploy(t, c, "sensors", spec, code)
	base := n.URL() + "/fn/sensors"
	claims := jwt.MapClaims{"sub": "sensor-7", "iss": "https://id.example", "aud": "sensors", "exp": time.Now().Add(time.Hour).Unix()}
	tok := hs256(t, sensorKey, claims)

	wantError(t, doH(t, "POST", base+"/readings", goodReading, nil), http.StatusUnauthorized, gust.EUNAUTHORIZED)
	wrongAud := hs256(t, sensorKey, jwt.MapClaims{"sub": "x", "iss": "https://id.example", "aud": "other", "exp": time.Now().Add(time.Hour).Unix()})
	wantError(t, doH(t, "POST", base+"/readings", goodReading, http.Header{"Authorization": {"Bearer " + wrongAud}}), http.StatusUnauthorized, gust.EUNAUTHORIZED)
	// Auth comes before the schema: an anonymous caller learns nothing
	// about what the route accepts.
	wantError(t, doH(t, "POST", base+"/readings", `{}`, nil), http.StatusUnauthorized, gust.EUNAUTHORIZED)

	// A forged identity header is dropped; the verified one arrives.
	r := doH(t, "POST", base+"/readings", goodReading, http.Header{
		"Authorization": {"Bearer " + tok}, "X-Gust-Auth-Subject": {"admin"}, "X-Gust-Auth-Method": {"token"},
	})
	if r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"subject":"sensor-7"`) || !strings.Contains(string(r.body), `"auth":"jwt"`) {
		t.Fatalf("valid JWT: %d %s", r.status, r.body)
	}
	wantError(t, doH(t, "POST", base+"/readings", `{"sensor": 1}`, http.Header{"Authorization": {"Bearer " + tok}}), http.StatusBadRequest, gust.EINVALID)

	// The async door passes the same routes.
	wantError(t, doH(t, "POST", n.URL()+"/async/sensors/readings", goodReading, nil), http.StatusUnauthorized, gust.EUNAUTHORIZED)
	r = doH(t, "POST", n.URL()+"/async/sensors/readings", goodReading, http.Header{"Authorization": {"Bearer " + tok}})
	if r.status != http.StatusAccepted {
		t.Fatalf("async with a valid JWT: %d %s", r.status, r.body)
	}

	// API keys, issued through the admin API.
	key, k, err := c.CreateAPIKey(ctx, "sensors", "stats")
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, doH(t, "GET", base+"/stats", "", nil), http.StatusUnauthorized, gust.EUNAUTHORIZED)
	otherKey, _, err := c.CreateAPIKey(ctx, "sensors", "readings")
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, doH(t, "GET", base+"/stats", "", http.Header{"X-Api-Key": {otherKey}}), http.StatusForbidden, gust.EFORBIDDEN)
	for i := range 2 {
		r := doH(t, "GET", base+"/stats", "", http.Header{"X-Api-Key": {key}})
		if r.status != http.StatusOK {
			t.Fatalf("stats with its key, call %d: %d %s", i+1, r.status, r.body)
		}
	}
	// The burst of 2 is spent and 0.5 rps refills one in 2s.
	r = doH(t, "GET", base+"/stats", "", http.Header{"X-Api-Key": {key}})
	wantError(t, r, http.StatusTooManyRequests, gust.ETHROTTLED)
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Fatalf("Retry-After = %q, want 2 at 0.5 rps", ra)
	}
	keys, err := c.APIKeys(ctx, "sensors")
	if err != nil || len(keys) != 2 {
		t.Fatalf("APIKeys = %v, %v", keys, err)
	}
	if err := c.RevokeAPIKey(ctx, "sensors", k.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, doH(t, "GET", base+"/stats", "", http.Header{"X-Api-Key": {key}}), http.StatusUnauthorized, gust.EUNAUTHORIZED)

	// Token routes take a gust token with invoke scope on this function.
	invokeTok, _, err := c.CreateToken(ctx, "invoke", []string{"sensors"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	readTok, _, err := c.CreateToken(ctx, "read", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, doH(t, "GET", base+"/admin/stats", "", http.Header{"Authorization": {"Bearer " + readTok}}), http.StatusForbidden, gust.EFORBIDDEN)
	r = doH(t, "GET", base+"/admin/stats", "", http.Header{"Authorization": {"Bearer " + invokeTok}})
	// The function answers 404 for a path it does not know: the request
	// reached it, which is what the token was for.
	if r.status != http.StatusNotFound || !strings.Contains(string(r.body), "no such path") {
		t.Fatalf("token route: %d %s", r.status, r.body)
	}

	// Deleting the function drops its API keys: a new function of the
	// same name does not inherit them.
	if err := c.Delete(ctx, "sensors"); err != nil {
		t.Fatal(err)
	}
	if keys, err := c.APIKeys(ctx, "sensors"); err != nil || len(keys) != 0 {
		t.Fatalf("API keys after rm: %v, %v", keys, err)
	}
}
