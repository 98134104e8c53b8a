package routes

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gustfaas/gust"
)

// The verified-token cache must never change a verdict: a repeat of a
// token is answered from it, but expiry still applies, a key read again
// (rotated) starts it over, and a token that differs in any byte is
// checked in full.

func newCacheVerifier(sec staticSecrets, c *clock) *jwtVerifier {
	return newJWTVerifier(gust.RouteJWT{Secret: "K", Issuer: "i", Audience: "a"}, sec, 30*time.Second, c.now, nil)
}

func signHS(t *testing.T, key string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTCacheHit(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newCacheVerifier(staticSecrets{"K": hsKey}, c)
	tok := signHS(t, hsKey, jwt.MapClaims{"sub": "s", "iss": "i", "aud": "a", "exp": c.now().Add(time.Hour).Unix()})
	first, err := v.verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	again, err := v.verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if again != first || len(v.seen) != 1 {
		t.Fatalf("a repeat was not answered from the cache (%d cached)", len(v.seen))
	}
	if again.subject != "s" || again.header != string(again.claims) {
		t.Fatalf("cached identity %+v", again)
	}
}

func TestJWTCacheExpiry(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newCacheVerifier(staticSecrets{"K": hsKey}, c)
	// The key TTL is far longer than the token's life here, so the
	// expiry below is the cache's own check, not a refetch.
	v.ttl = 24 * time.Hour
	tok := signHS(t, hsKey, jwt.MapClaims{"sub": "s", "iss": "i", "aud": "a", "exp": c.now().Add(time.Minute).Unix()})
	if _, err := v.verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	c.add(59 * time.Second)
	if _, err := v.verify(context.Background(), tok); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	c.add(time.Second)
	_, err := v.verify(context.Background(), tok)
	wantCode(t, err, gust.EUNAUTHORIZED)
	if gust.ErrorMessage(err) != "invalid token: expired" {
		t.Fatalf("at exp: %v", err)
	}

	// With leeway, as the library has it: valid until exp+leeway.
	v = newJWTVerifier(gust.RouteJWT{Secret: "K", Issuer: "i", Audience: "a", Leeway: gust.Duration(10 * time.Second)},
		staticSecrets{"K": hsKey}, 24*time.Hour, c.now, nil)
	tok = signHS(t, hsKey, jwt.MapClaims{"iss": "i", "aud": "a", "exp": c.now().Add(time.Minute).Unix()})
	if _, err := v.verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute + 9*time.Second)
	if _, err := v.verify(context.Background(), tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	c.add(time.Second)
	_, err = v.verify(context.Background(), tok)
	wantCode(t, err, gust.EUNAUTHORIZED)
}

func TestJWTCacheKeyRotation(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	sec := staticSecrets{"K": hsKey}
	v := newCacheVerifier(sec, c)
	claims := jwt.MapClaims{"sub": "s", "iss": "i", "aud": "a", "exp": c.now().Add(time.Hour).Unix()}
	oldTok := signHS(t, hsKey, claims)
	if _, err := v.verify(context.Background(), oldTok); err != nil {
		t.Fatal(err)
	}
	const newKey = "a rotated key, also of at least 32 bytes"
	sec["K"] = newKey
	newTok := signHS(t, newKey, claims)
	// Until the key is read again, the old one is what the route uses.
	if _, err := v.verify(context.Background(), oldTok); err != nil {
		t.Fatalf("before the key TTL: %v", err)
	}
	c.add(30 * time.Second)
	_, err := v.verify(context.Background(), oldTok)
	wantCode(t, err, gust.EUNAUTHORIZED)
	if gust.ErrorMessage(err) != "invalid token: bad signature" {
		t.Fatalf("old token after rotation: %v", err)
	}
	if _, err := v.verify(context.Background(), newTok); err != nil {
		t.Fatalf("new token after rotation: %v", err)
	}
	if len(v.seen) != 1 {
		t.Fatalf("%d tokens cached after rotation, want only the new one", len(v.seen))
	}
}

func TestJWTCacheOneByteMisses(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newCacheVerifier(staticSecrets{"K": hsKey}, c)
	tok := signHS(t, hsKey, jwt.MapClaims{"sub": "s", "iss": "i", "aud": "a", "exp": c.now().Add(time.Hour).Unix()})
	if _, err := v.verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i := range len(tok) {
		b := []byte(tok)
		b[i] = 'A'
		if b[i] == tok[i] {
			b[i] = 'B'
		}
		mut := string(b)
		got, err := v.verify(context.Background(), mut)
		if got != nil && got == v.seen[tok] {
			t.Fatalf("byte %d changed: answered with the cached token's identity", i)
		}
		// Whatever the cache holds, the verdict is a fresh verifier's.
		fresh := newCacheVerifier(staticSecrets{"K": hsKey}, c)
		_, want := fresh.verify(context.Background(), mut)
		if (err == nil) != (want == nil) {
			t.Fatalf("byte %d changed: %v, without the cache %v", i, err, want)
		}
		if err != nil {
			refused++
		}
	}
	// Only the last signature character has spare bits that base64url
	// may ignore; every other change must be refused.
	if refused < len(tok)-1 {
		t.Fatalf("only %d of %d one-byte changes refused", refused, len(tok))
	}
}
