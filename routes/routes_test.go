package routes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/auth"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/secrets"
)

const hsKey = "0123456789abcdef0123456789abcdef-test-key"

type env struct {
	router  *Router
	secrets *secrets.Store
	tokens  *auth.Tokens
	keys    *Keys
	clock   *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// newEnv starts an embedded NATS and the real token, secret and key stores.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(ctx(t), broker.Config{DataDir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	js := b.JetStream()
	kr, _, err := secrets.LoadKeyring(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := secrets.Open(ctx(t), js, 1, kr)
	if err != nil {
		t.Fatal(err)
	}
	a, _, _, err := auth.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := auth.OpenTokens(ctx(t), js, 1, a)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := OpenKeys(ctx(t), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	r := New(Config{Tokens: toks, Secrets: st, Keys: keys, Now: c.now, Logger: quiet})
	return &env{router: r, secrets: st, tokens: toks, keys: keys, clock: c}
}

func version(routes ...gust.Route) *gust.Version {
	return &gust.Version{Function: "fn", Number: 1, Spec: gust.Spec{Routes: routes}}
}

// admit runs a request through Admit and finish; it returns the headers
// the function would get.
func admit(t *testing.T, r *Router, v *gust.Version, method, path string, hdr http.Header, body string) (http.Header, error) {
	t.Helper()
	req := httptest.NewRequest(method, "http://x/fn/"+v.Function+path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.7:1234"
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	finish, err := r.Admit(req, v, path)
	if err != nil {
		return nil, err
	}
	out := req.Header.Clone()
	StripHeaders(out)
	if finish != nil {
		if err := finish([]byte(body), out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if gust.ErrorCode(err) != code {
		t.Fatalf("error = %v (code %q), want code %q", err, gust.ErrorCode(err), code)
	}
}

func TestMatchPath(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"/", "/", true},
		{"/", "/x", false},
		{"/items", "/items", true},
		{"/items", "/items/", false},
		{"/items/", "/items/", true},
		{"/items/{id}", "/items/42", true},
		{"/items/{id}", "/items/", false},
		{"/items/{id}", "/items/42/x", false},
		{"/items/{id}/parts", "/items/42/parts", true},
		{"/files/{rest...}", "/files", true},
		{"/files/{rest...}", "/files/", true},
		{"/files/{rest...}", "/files/a/b/c", true},
		{"/files/{rest...}", "/filesx", false},
		{"/{a}/{b}", "/x/y", true},
		{"/{a}/{b}", "/x", false},
	}
	for _, c := range cases {
		segs, err := gust.ValidateRoutePath(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		if got := matchPath(segs, c.path); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

func TestNoRoutesAdmitsEverything(t *testing.T) {
	r := New(Config{})
	req := httptest.NewRequest("DELETE", "/fn/fn/anything", nil)
	finish, err := r.Admit(req, version(), "/anything")
	if err != nil || finish != nil {
		t.Fatalf("Admit = (finish set: %t), %v; want nil, nil", finish != nil, err)
	}
}

func TestRouteMatchingAndHeaders(t *testing.T) {
	r := New(Config{})
	v := version(
		gust.Route{Method: "GET", Path: "/items/{id}"},
		gust.Route{Name: "catch-all", Path: "/{rest...}"},
	)
	h, err := admit(t, r, v, "GET", "/items/1", http.Header{"X-Gust-Auth-Subject": {"forged"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if h.Get(HeaderSubject) != "" || h.Get(HeaderRoute) != "GET /items/{id}" {
		t.Fatalf("headers %v: want the forged subject gone and the route named", h)
	}
	h, err = admit(t, r, v, "POST", "/items/1", nil, "")
	if err != nil || h.Get(HeaderRoute) != "catch-all" {
		t.Fatalf("POST /items/1: %v, route %q; want the catch-all", err, h.Get(HeaderRoute))
	}
	_, err = admit(t, New(Config{}), version(gust.Route{Method: "GET", Path: "/a"}), "GET", "/b", nil, "")
	wantCode(t, err, gust.ENOTFOUND)
}

func hsToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(hsKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestJWTHS256(t *testing.T) {
	e := newEnv(t)
	if err := e.secrets.Set(ctx(t), "JWT_KEY", []byte(hsKey)); err != nil {
		t.Fatal(err)
	}
	v := version(gust.Route{Path: "/", Auth: gust.AuthJWT, JWT: &gust.RouteJWT{Secret: "JWT_KEY", Issuer: "https://id.example", Audience: "sensors"}})
	if err := e.router.ValidateSpec(ctx(t), v.Spec); err != nil {
		t.Fatal(err)
	}
	now := e.clock.now()
	good := jwt.MapClaims{"sub": "alice", "iss": "https://id.example", "aud": "sensors", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "role": "writer"}
	h, err := admit(t, e.router, v, "GET", "/", bearer(hsToken(t, good)), "")
	if err != nil {
		t.Fatal(err)
	}
	if h.Get(HeaderMethod) != "jwt" || h.Get(HeaderSubject) != "alice" {
		t.Fatalf("identity headers %v", h)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(h.Get(HeaderClaims)), &claims); err != nil || claims["role"] != "writer" {
		t.Fatalf("claims header %q: %v", h.Get(HeaderClaims), err)
	}

	with := func(k string, val any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	bad := map[string]http.Header{
		"no token":     nil,
		"not bearer":   {"Authorization": {"Basic abc"}},
		"garbage":      bearer("a.b.c"),
		"expired":      bearer(hsToken(t, with("exp", now.Add(-time.Minute).Unix()))),
		"no exp":       bearer(hsToken(t, with("exp", nil))),
		"not yet":      bearer(hsToken(t, with("nbf", now.Add(time.Hour).Unix()))),
		"wrong iss":    bearer(hsToken(t, with("iss", "https://evil.example"))),
		"wrong aud":    bearer(hsToken(t, with("aud", "others"))),
		"no aud":       bearer(hsToken(t, with("aud", nil))),
		"alg none":     bearer(noneToken(t, good)),
		"other key":    bearer(signedWith(t, good, "another key that is long enough to use!")),
		"tampered sig": bearer(hsToken(t, good) + "x"),
	}
	for name, hdr := range bad {
		_, err := admit(t, e.router, v, "GET", "/", hdr, "")
		if gust.ErrorCode(err) != gust.EUNAUTHORIZED {
			t.Errorf("%s: error %v, want unauthorized", name, err)
		}
		if err != nil && strings.Contains(err.Error(), hsKey) {
			t.Errorf("%s: the error names the key", name)
		}
	}
}

func noneToken(t *testing.T, c jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signedWith(t *testing.T, c jwt.MapClaims, key string) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestJWTJWKS(t *testing.T) {
	e := newEnv(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "use": "sig", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ecPub[1:33]), "y": b64(ecPub[33:])},
		{"kty": "oct", "kid": "ignored", "k": "AAAA"},
	}})
	if err := e.secrets.Set(ctx(t), "JWKS", jwks); err != nil {
		t.Fatal(err)
	}
	v := version(gust.Route{Path: "/", Auth: gust.AuthJWT, JWT: &gust.RouteJWT{JWKS: "JWKS", Audience: "app"}})
	if err := e.router.ValidateSpec(ctx(t), v.Spec); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "bob", "aud": "app", "exp": e.clock.now().Add(time.Hour).Unix()}
	sign := func(m jwt.SigningMethod, kid string, key any) string {
		tk := jwt.NewWithClaims(m, claims)
		tk.Header["kid"] = kid
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, tok := range map[string]string{
		"RS256": sign(jwt.SigningMethodRS256, "r1", rsaKey),
		"ES256": sign(jwt.SigningMethodES256, "e1", ecKey),
	} {
		h, err := admit(t, e.router, v, "GET", "/", bearer(tok), "")
		if err != nil || h.Get(HeaderSubject) != "bob" {
			t.Fatalf("%s: %v, subject %q", name, err, h.Get(HeaderSubject))
		}
	}
	// An HS256 token made with the RSA public key as its secret is the
	// classic algorithm confusion; it must not pass.
	for name, tok := range map[string]string{
		"wrong kid":     sign(jwt.SigningMethodRS256, "e1", rsaKey),
		"unknown kid":   sign(jwt.SigningMethodRS256, "zz", rsaKey),
		"alg confusion": sign(jwt.SigningMethodHS256, "r1", rsaKey.N.Bytes()),
	} {
		_, err := admit(t, e.router, v, "GET", "/", bearer(tok), "")
		wantCode(t, err, gust.EUNAUTHORIZED)
		_ = name
	}
	if err := e.secrets.Set(ctx(t), "BAD_JWKS", []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`)); err != nil {
		t.Fatal(err)
	}
	err = e.router.ValidateSpec(ctx(t), version(gust.Route{Path: "/", Auth: gust.AuthJWT, JWT: &gust.RouteJWT{JWKS: "BAD_JWKS"}}).Spec)
	wantCode(t, err, gust.EINVALID)
}

func TestTokenAuth(t *testing.T) {
	e := newEnv(t)
	v := version(gust.Route{Path: "/", Auth: gust.AuthToken})
	invoke, _, err := e.tokens.Create(ctx(t), auth.ScopeInvoke, []string{"fn"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := e.tokens.Create(ctx(t), auth.ScopeInvoke, []string{"other"}, 0)
	read, _, _ := e.tokens.Create(ctx(t), auth.ScopeRead, nil, 0)
	h, err := admit(t, e.router, v, "GET", "/", bearer(invoke), "")
	if err != nil || h.Get(HeaderMethod) != "token" || h.Get("Authorization") != "" {
		t.Fatalf("invoke token: %v; headers %v (want the token itself stripped)", err, h)
	}
	_, err = admit(t, e.router, v, "GET", "/", bearer(other), "")
	wantCode(t, err, gust.EFORBIDDEN)
	_, err = admit(t, e.router, v, "GET", "/", bearer(read), "")
	wantCode(t, err, gust.EFORBIDDEN)
	_, err = admit(t, e.router, v, "GET", "/", bearer("gust_nope_nope"), "")
	wantCode(t, err, gust.EUNAUTHORIZED)
}

func TestAPIKeys(t *testing.T) {
	e := newEnv(t)
	v := version(
		gust.Route{Name: "a", Path: "/a", Auth: gust.AuthAPIKey},
		gust.Route{Name: "b", Path: "/b", Auth: gust.AuthAPIKey},
	)
	any, k1, err := e.keys.Create(ctx(t), "fn", "")
	if err != nil {
		t.Fatal(err)
	}
	onlyA, _, _ := e.keys.Create(ctx(t), "fn", "a")
	otherFn, _, _ := e.keys.Create(ctx(t), "other", "")
	h, err := admit(t, e.router, v, "GET", "/b", http.Header{HeaderAPIKey: {any}}, "")
	if err != nil || h.Get(HeaderSubject) != k1.ID || h.Get(HeaderAPIKey) != "" {
		t.Fatalf("key for every route: %v; headers %v", err, h)
	}
	if _, err := admit(t, e.router, v, "GET", "/a", bearer(onlyA), ""); err != nil {
		t.Fatalf("route key as bearer: %v", err)
	}
	_, err = admit(t, e.router, v, "GET", "/b", http.Header{HeaderAPIKey: {onlyA}}, "")
	wantCode(t, err, gust.EFORBIDDEN)
	_, err = admit(t, e.router, v, "GET", "/a", http.Header{HeaderAPIKey: {otherFn}}, "")
	wantCode(t, err, gust.EFORBIDDEN)
	_, err = admit(t, e.router, v, "GET", "/a", http.Header{HeaderAPIKey: {any + "0"}}, "")
	wantCode(t, err, gust.EUNAUTHORIZED)
	_, err = admit(t, e.router, v, "GET", "/a", nil, "")
	wantCode(t, err, gust.EUNAUTHORIZED)

	list, err := e.keys.List(ctx(t), "fn")
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v; want 2 keys", list, err)
	}
	if err := e.keys.Revoke(ctx(t), "other", k1.ID); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("revoke through another function: %v", err)
	}
	if err := e.keys.Revoke(ctx(t), "fn", k1.ID); err != nil {
		t.Fatal(err)
	}
	_, err = admit(t, e.router, v, "GET", "/a", http.Header{HeaderAPIKey: {any}}, "")
	wantCode(t, err, gust.EUNAUTHORIZED)
}

func TestRateLimit(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	r := New(Config{Now: c.now})
	v := version(gust.Route{Path: "/", RateLimit: &gust.RateLimit{RPS: 2, Burst: 3}})
	for i := range 3 {
		if _, err := admit(t, r, v, "GET", "/", nil, ""); err != nil {
			t.Fatalf("request %d within the burst: %v", i+1, err)
		}
	}
	_, err := admit(t, r, v, "GET", "/", nil, "")
	wantCode(t, err, gust.ETHROTTLED)
	if d := RetryAfter(err); d <= 0 || d > 500*time.Millisecond {
		t.Fatalf("RetryAfter = %s, want (0, 500ms] at 2 rps", d)
	}
	// Another client has its own bucket.
	req := httptest.NewRequest("GET", "/fn/fn/", nil)
	req.RemoteAddr = "198.51.100.1:9"
	if _, err := r.Admit(req, v, "/"); err != nil {
		t.Fatalf("another client: %v", err)
	}
	c.add(500 * time.Millisecond)
	if _, err := admit(t, r, v, "GET", "/", nil, ""); err != nil {
		t.Fatalf("after a refill: %v", err)
	}
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(gust.RateLimit{RPS: 1, Burst: 1})
	now := time.Unix(0, 0)
	for i := range maxBuckets + 10 {
		l.allow("k"+string(rune(i)), now)
	}
	if len(l.buckets) > maxBuckets {
		t.Fatalf("%d buckets, want at most %d", len(l.buckets), maxBuckets)
	}
	// Once they refill, idle buckets make room for new callers.
	if _, ok := l.allow("fresh", now.Add(2*time.Second)); !ok {
		t.Fatal("a new caller after a refill was refused")
	}
}

func TestSchema(t *testing.T) {
	r := New(Config{})
	schema := `{"type":"object","required":["value"],"additionalProperties":false,
		"properties":{"value":{"type":"number","maximum":10},"at":{"type":"string","format":"date-time"}}}`
	v := version(gust.Route{Method: "POST", Path: "/", Schema: json.RawMessage(schema)})
	if err := r.ValidateSpec(ctx(t), v.Spec); err != nil {
		t.Fatal(err)
	}
	if _, err := admit(t, r, v, "POST", "/", nil, `{"value": 3, "at": "2026-01-02T03:04:05Z"}`); err != nil {
		t.Fatalf("valid body: %v", err)
	}
	for body, want := range map[string]string{
		`{"value": 11}`:                 "/value",
		`{"value": "x", "extra": true}`: "extra",
		`{}`:                            "value",
		`{"value": 1, "at": "noon"}`:    "date-time",
		`not json`:                      "not valid JSON",
		``:                              "not valid JSON",
		// The schema library panics comparing this with the maximum;
		// it is refused before it gets there.
		`{"value": 10e1000001}`: "number out of range at /value",
	} {
		_, err := admit(t, r, v, "POST", "/", nil, body)
		wantCode(t, err, gust.EINVALID)
		if !strings.Contains(gust.ErrorMessage(err), want) {
			t.Errorf("body %q: message %q does not mention %q", body, gust.ErrorMessage(err), want)
		}
	}
}

func TestValidateSpecRefusals(t *testing.T) {
	e := newEnv(t)
	cases := map[string]gust.Route{
		"bad schema":     {Path: "/", Schema: json.RawMessage(`{"type": 12}`)},
		"external ref":   {Path: "/", Schema: json.RawMessage(`{"$ref": "file:///etc/passwd"}`)},
		"http ref":       {Path: "/", Schema: json.RawMessage(`{"$ref": "http://127.0.0.1:1/s.json"}`)},
		"missing secret": {Path: "/", Auth: gust.AuthJWT, JWT: &gust.RouteJWT{Secret: "NOPE"}},
	}
	for name, rt := range cases {
		err := e.router.ValidateSpec(ctx(t), version(rt).Spec)
		if gust.ErrorCode(err) != gust.EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if err := e.secrets.Set(ctx(t), "SHORT", []byte("short")); err != nil {
		t.Fatal(err)
	}
	err := e.router.ValidateSpec(ctx(t), version(gust.Route{Path: "/", Auth: gust.AuthJWT, JWT: &gust.RouteJWT{Secret: "SHORT"}}).Spec)
	wantCode(t, err, gust.EINVALID)
}

func TestSpecValidateRoutes(t *testing.T) {
	ok := gust.Spec{Routes: []gust.Route{{Method: "GET", Path: "/items/{id}"}, {Path: "/files/{rest...}", Auth: gust.AuthAPIKey}}}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, rt := range map[string]gust.Route{
		"no slash":        {Path: "items"},
		"lower method":    {Method: "get", Path: "/"},
		"rest not last":   {Path: "/{a...}/b"},
		"dup wildcard":    {Path: "/{a}/{a}"},
		"half wildcard":   {Path: "/x{a}"},
		"bad auth":        {Path: "/", Auth: "basic"},
		"jwt no settings": {Path: "/", Auth: gust.AuthJWT},
		"jwt both keys":   {Path: "/", Auth: gust.AuthJWT, JWT: &gust.RouteJWT{Secret: "A", JWKS: "B"}},
		"jwt on none":     {Path: "/", JWT: &gust.RouteJWT{Secret: "A"}},
		"zero rps":        {Path: "/", RateLimit: &gust.RateLimit{}},
		"schema string":   {Path: "/", Schema: json.RawMessage(`"x"`)},
	} {
		s := gust.Spec{Routes: []gust.Route{rt}}.WithDefaults()
		if err := s.Validate(); gust.ErrorCode(err) != gust.EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	dup := gust.Spec{Routes: []gust.Route{{Method: "GET", Path: "/"}, {Method: "GET", Path: "/"}}}.WithDefaults()
	if err := dup.Validate(); err == nil {
		t.Error("two routes with one ID passed")
	}
}
