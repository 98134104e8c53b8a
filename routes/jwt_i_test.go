package routes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gustfaas/gust"
)

// flakySecrets is a secret store that fails, blocks and counts on cue:
// the real one cannot be made to fail between two reads of one test.
type flakySecrets struct {
	mu    sync.Mutex
	vals  map[string]string
	err   error         // returned by Values while set
	block chan struct{} // Values waits on it while set
	enter chan struct{} // Values signals it on entry while set
	reads int
}

func (s *flakySecrets) Values(ctx context.Context, names []string) (map[string]string, error) {
	s.mu.Lock()
	s.reads++
	block, enter := s.block, s.enter
	s.mu.Unlock()
	if enter != nil {
		enter <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := map[string]string{}
	for _, n := range names {
		v, ok := s.vals[n]
		if !ok {
			return nil, gust.Errorf(gust.ENOTFOUND, "no secret %s", n)
		}
		out[n] = v
	}
	return out, nil
}

func (s *flakySecrets) Exists(ctx context.Context, names []string) error {
	_, err := s.Values(ctx, names)
	return err
}

func (s *flakySecrets) set(f func(*flakySecrets)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

func (s *flakySecrets) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func hsClaims(c *clock) jwt.MapClaims {
	return jwt.MapClaims{"sub": "s", "iss": "i", "aud": "a", "exp": c.now().Add(24 * time.Hour).Unix()}
}

// A secret store that cannot be read after the key TTL must not turn the
// route into a 503: the last good key serves for a grace period, and the
// store is not asked by every request meanwhile.
func TestJWTKeysOutliveAStoreOutage(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	sec := &flakySecrets{vals: map[string]string{"K": hsKey}}
	v := newJWTVerifier(gust.RouteJWT{Secret: "K", Issuer: "i", Audience: "a"}, sec, 30*time.Second, c.now, nil)
	tok := signHS(t, hsKey, hsClaims(c))
	if _, err := v.verify(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	sec.set(func(s *flakySecrets) { s.err = errors.New("nats: timeout") })
	c.add(31 * time.Second)
	if _, err := v.verify(ctx(t), tok); err != nil {
		t.Fatalf("store down after the TTL: %v", err)
	}
	reads := sec.readCount()
	for range 20 {
		if _, err := v.verify(ctx(t), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := sec.readCount() - reads; n != 0 {
		t.Fatalf("%d reads of a failing store within %s", n, keyRetryEvery)
	}
	c.add(keyRetryEvery)
	if _, err := v.verify(ctx(t), tok); err != nil || sec.readCount() != reads+1 {
		t.Fatalf("after %s: %v, %d more reads, want one", keyRetryEvery, err, sec.readCount()-reads)
	}
	// Past the grace, the route says the store is the trouble.
	c.add(staleKeyGrace)
	_, err := v.verify(ctx(t), tok)
	wantCode(t, err, gust.EUNAVAILABLE)
	// The store back, the route is too.
	sec.set(func(s *flakySecrets) { s.err = nil })
	if _, err := v.verify(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
}

// A secret removed is the operator's word: its key stops at the next
// read, grace or not.
func TestJWTRemovedSecretEndsItsKey(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	sec := &flakySecrets{vals: map[string]string{"K": hsKey}}
	v := newJWTVerifier(gust.RouteJWT{Secret: "K", Issuer: "i", Audience: "a"}, sec, 30*time.Second, c.now, nil)
	tok := signHS(t, hsKey, hsClaims(c))
	if _, err := v.verify(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	sec.set(func(s *flakySecrets) { delete(s.vals, "K") })
	c.add(30 * time.Second)
	_, err := v.verify(ctx(t), tok)
	wantCode(t, err, gust.EUNAVAILABLE)
	sec.set(func(s *flakySecrets) { s.vals["K"] = "short" })
	c.add(keyRetryEvery)
	_, err = v.verify(ctx(t), tok)
	wantCode(t, err, gust.EUNAVAILABLE)
}

// The read runs outside the verifier's lock: while one request waits for
// a slow store, others are answered with the keys they have.
func TestJWTSlowStoreHoldsUpNoOne(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	sec := &flakySecrets{vals: map[string]string{"K": hsKey}}
	v := newJWTVerifier(gust.RouteJWT{Secret: "K", Issuer: "i", Audience: "a"}, sec, 30*time.Second, c.now, nil)
	tok := signHS(t, hsKey, hsClaims(c))
	if _, err := v.verify(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	v.readTimeout = time.Hour // the store is slow, not failing
	block, enter := make(chan struct{}), make(chan struct{}, 1)
	sec.set(func(s *flakySecrets) { s.block, s.enter = block, enter })
	c.add(30 * time.Second)
	first := make(chan error, 1)
	go func() {
		_, err := v.verify(ctx(t), tok)
		first <- err
	}()
	select {
	case <-enter:
	case <-time.After(20 * time.Second):
		t.Fatal("the key was not read again after its TTL")
	}
	other, tok2 := make(chan error, 1), signHS(t, hsKey, jwt.MapClaims{"sub": "t", "iss": "i", "aud": "a", "exp": c.now().Add(time.Hour).Unix()})
	go func() {
		_, err := v.verify(ctx(t), tok2)
		other <- err
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Fatalf("while the store was slow: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a request waited on another's read of the store")
	}
	close(block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// A token naming a key id the route's JWKS lacks makes the keys be read
// again at once, at most once per kidReadEvery: a provider's new key works
// from its first token, and made-up ids cannot make the store busy.
func TestJWTUnknownKidRereadsOnce(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	doc := func(keys map[string]*ecdsa.PrivateKey) string {
		var out []map[string]string
		for kid, k := range keys {
			pub, err := k.PublicKey.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(pub[1:33]), "y": b64(pub[33:])})
		}
		b, _ := json.Marshal(map[string]any{"keys": out})
		return string(b)
	}
	sign := func(kid string, k *ecdsa.PrivateKey) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "s", "aud": "app", "exp": c.now().Add(time.Hour).Unix()})
		tk.Header["kid"] = kid
		s, err := tk.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sec := &flakySecrets{vals: map[string]string{"IDP": doc(map[string]*ecdsa.PrivateKey{"k1": k1})}}
	v := newJWTVerifier(gust.RouteJWT{JWKS: "IDP", Audience: "app"}, sec, time.Hour, c.now, nil)
	if _, err := v.verify(ctx(t), sign("k1", k1)); err != nil {
		t.Fatal(err)
	}
	sec.set(func(s *flakySecrets) { s.vals["IDP"] = doc(map[string]*ecdsa.PrivateKey{"k1": k1, "k2": k2}) })
	if _, err := v.verify(ctx(t), sign("k2", k2)); err != nil {
		t.Fatalf("a token of the provider's new key, within the key TTL: %v", err)
	}
	c.add(kidReadEvery)
	reads := sec.readCount()
	for range 10 {
		_, err := v.verify(ctx(t), sign("made-up", k1))
		wantCode(t, err, gust.EUNAUTHORIZED)
	}
	if n := sec.readCount() - reads; n != 1 {
		t.Fatalf("10 made-up key ids caused %d reads, want 1", n)
	}
	c.add(kidReadEvery)
	_, err := v.verify(ctx(t), sign("made-up", k1))
	wantCode(t, err, gust.EUNAUTHORIZED)
	if n := sec.readCount() - reads; n != 2 {
		t.Fatalf("%d reads after %s, want 2", n, kidReadEvery)
	}
}

// A version stored before jwks needed an audience takes no token rather
// than every token its provider signs; one stored with a longer leeway
// gets gust.MaxJWTLeeway.
func TestJWTStoredVersionsBeforeTheBounds(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := k.PublicKey.Bytes()
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "x": b64(pub[1:33]), "y": b64(pub[33:])}}})
	sec := &flakySecrets{vals: map[string]string{"IDP": string(b)}}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "s", "aud": "other-app", "exp": c.now().Add(time.Hour).Unix()}).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	v := newJWTVerifier(gust.RouteJWT{JWKS: "IDP"}, sec, time.Hour, c.now, nil)
	_, err = v.verify(ctx(t), tok)
	wantCode(t, err, gust.EUNAVAILABLE)

	v = newJWTVerifier(gust.RouteJWT{Secret: "K", Issuer: "i", Audience: "a", Leeway: gust.Duration(time.Hour)},
		&flakySecrets{vals: map[string]string{"K": hsKey}}, time.Hour, c.now, nil)
	tok = signHS(t, hsKey, jwt.MapClaims{"iss": "i", "aud": "a", "exp": c.now().Unix()})
	c.add(gust.MaxJWTLeeway - time.Second)
	if _, err := v.verify(ctx(t), tok); err != nil {
		t.Fatalf("within the bounded leeway: %v", err)
	}
	c.add(time.Second)
	_, err = v.verify(ctx(t), tok)
	wantCode(t, err, gust.EUNAUTHORIZED)
}
