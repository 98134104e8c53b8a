package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// BenchmarkRouteGuard measures sequential POSTs of a sensor reading to
// examples/validate behind a route with jwt auth (HS256) and its JSON
// Schema, against the same function behind the same route with neither,
// on one node. The sides alternate in batches so noise from a shared
// machine falls on both alike. It reports each side's calls per second and
// their ratio; issue 6's target is guarded/plain >= 0.9.
func BenchmarkRouteGuard(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := Start(ctx, Config{
		DataDir: b.TempDir(), Listen: "127.0.0.1:0", MemoryBudget: 4096, Metering: new(bool),
		WasmCacheDir: wasmtest.CacheDir(b), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close(context.Background()) })
	tok, err := os.ReadFile(n.TokenPath())
	if err != nil {
		b.Fatal(err)
	}
	c := client.New(n.URL(), strings.TrimSpace(string(tok)))
	if _, err := c.SetSecret(ctx, "SENSOR_JWT_KEY", []byte(sensorKey)); err != nil {
		b.Fatal(err)
	}
	m, code := validateExample(b)
	plain := m.Spec
	plain.Routes = []gust.Route{{Name: "readings", Method: "POST", Path: "/readings"}}
	guarded := m.Spec
	guarded.Routes = []gust.Route{{Name: "readings", Method: "POST", Path: "/readings", Auth: gust.AuthJWT,
		JWT:    &gust.RouteJWT{Secret: "SENSOR_JWT_KEY", Issuer: "https://id.example", Audience: "sensors"},
		Schema: m.Routes[0].Schema}}
	for name, spec := range map[string]gust.Spec{"plain": plain, "guarded": guarded} {
		if _, err := c.Deploy(ctx, name, spec, name+".wasm", bytes.NewReader(code)); err != nil {
			b.Fatal(err)
		}
	}
	jwtTok := hs256(b, sensorKey, jwt.MapClaims{"sub": "sensor-7", "iss": "https://id.example", "aud": "sensors", "exp": time.Now().Add(time.Hour).Unix()})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	body := []byte(goodReading)
	call := func(url string, auth string) {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("POST %s = %d", url, resp.StatusCode)
		}
	}
	plainURL, guardedURL := n.URL()+"/fn/plain/readings", n.URL()+"/fn/guarded/readings"
	for range 200 { // warm both: instances, connections, compiled routes, JWT key
		call(plainURL, "")
		call(guardedURL, jwtTok)
	}
	b.ResetTimer()
	const batch = 50
	var tPlain, tGuarded time.Duration
	for done := 0; done < b.N; done += batch {
		k := min(batch, b.N-done)
		t0 := time.Now()
		for range k {
			call(plainURL, "")
		}
		t1 := time.Now()
		for range k {
			call(guardedURL, jwtTok)
		}
		tPlain += t1.Sub(t0)
		tGuarded += time.Since(t1)
	}
	b.StopTimer()
	p := float64(b.N) / tPlain.Seconds()
	g := float64(b.N) / tGuarded.Seconds()
	b.ReportMetric(p, "plain-calls/s")
	b.ReportMetric(g, "guarded-calls/s")
	b.ReportMetric(g/p, "guarded/plain")
}
