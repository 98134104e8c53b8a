package routes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gustfaas/gust"
)

// maxTokenBytes bounds a JWT before it is parsed.
const maxTokenBytes = 16 << 10

// jwtVerifier checks the JWTs of one route. Its keys come from the secret
// store and are cached for ttl.
type jwtVerifier struct {
	cfg     gust.RouteJWT
	secrets Secrets
	ttl     time.Duration
	now     func() time.Time
	parser  *jwt.Parser
	log     *slog.Logger
	// leeway is cfg.Leeway, at most gust.MaxJWTLeeway: a version stored
	// before that bound keeps its route, with the bounded skew.
	leeway time.Duration

	mu      sync.Mutex
	keys    *keySet
	fetched time.Time
	// seen remembers tokens already verified with keys, as clients send
	// one token many times: a repeat costs one lock, a map lookup (the
	// whole token is the key, so a token that differs in any byte
	// misses) and a clock check, instead of a signature check and two
	// JSON decodes. It starts over whenever keys are read again, so a
	// rotated key is never vouched for by the cache.
	seen map[string]*verified
	// reading is closed when the read of the keys in progress ends; nil:
	// none. The read runs outside mu, so requests that have keys are
	// never held up by the secret store.
	reading chan struct{}
	// readErr is the last read's error, for those who waited on it.
	readErr error
	// retryAt: a read failed and the last good keys are served until
	// then without trying again, so a failing store is not asked by
	// every request.
	retryAt time.Time
	// kidRead is when a token naming an unknown key id last made the
	// keys be read again.
	kidRead time.Time
	// readTimeout bounds one read of the keys (keyReadTimeout).
	readTimeout time.Duration
	// outage is what has been logged of the store failure under way: a
	// failing store is read every keyRetryEvery, and each failure must
	// not log again.
	outage outageState
}

// verified is what a checked token yields, and when it stops being valid.
type verified struct {
	subject string
	claims  []byte // JSON
	// header is claims as the string the function's header carries, made
	// once per token rather than once per request.
	header string
	exp    time.Time
	nbf    time.Time // zero: none
}

// maxSeen bounds the verified-token cache; past it the cache starts over.
const maxSeen = 4096

// keySet is what a route verifies with: an HMAC key, or public keys by
// key id ("" for a key without one).
type keySet struct {
	hmac   []byte
	public map[string]any
}

const (
	// staleKeyGrace is how long past its TTL a key stays in use while
	// the secret store cannot be read: a store outage must not turn
	// every JWT route into a 503. A secret removed or replaced by an
	// unusable one ends its keys at once.
	staleKeyGrace = 10 * time.Minute
	// keyRetryEvery spaces reads of a failing store while the last good
	// keys serve.
	keyRetryEvery = 5 * time.Second
	// kidReadEvery bounds the reads that tokens naming an unknown key
	// id cause: a provider's new key is picked up at its first token,
	// and a flood of made-up ids costs one read per this.
	kidReadEvery = 5 * time.Second
	// keyReadTimeout bounds one read of the keys, which outlives the
	// request that started it.
	keyReadTimeout = 10 * time.Second
)

// errUnknownKid is the key lookup's error for a token naming a key id
// the route's JWKS does not have.
var errUnknownKid = errors.New("no key with that id")

// outageState says what has been logged of a secret store failure.
type outageState uint8

const (
	outageNone    outageState = iota
	outageStale               // logged: the last good keys serve
	outageExpired             // logged: they are past staleKeyGrace too
)

// newJWTVerifier returns the verifier of a route with cfg. log (nil:
// slog.Default()) says when a store failure leaves the route on its last
// good keys, once per failure.
func newJWTVerifier(cfg gust.RouteJWT, secrets Secrets, ttl time.Duration, now func() time.Time, log *slog.Logger) *jwtVerifier {
	if log == nil {
		log = slog.Default()
	}
	methods := []string{"HS256"}
	if cfg.JWKS != "" {
		methods = []string{"RS256", "ES256"}
	}
	leeway := min(max(cfg.Leeway.D(), 0), gust.MaxJWTLeeway)
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(leeway),
		// A token without an expiry is valid forever once leaked.
		jwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &jwtVerifier{cfg: cfg, secrets: secrets, ttl: ttl, now: now, log: log, leeway: leeway, readTimeout: keyReadTimeout, parser: jwt.NewParser(opts...)}
}

// loadKeys returns the route's keys, reading them from the secret store
// when the cached ones are older than ttl. Errors: EUNAVAILABLE.
func (v *jwtVerifier) loadKeys(ctx context.Context) (*keySet, error) {
	return v.load(ctx, false)
}

// load is loadKeys; force reads the keys again even if they are fresh.
// When a read fails for want of the store (not for a removed or unusable
// secret), the last good keys serve for up to staleKeyGrace past their
// TTL, and the store is tried again every keyRetryEvery.
func (v *jwtVerifier) load(ctx context.Context, force bool) (*keySet, error) {
	v.mu.Lock()
	now := v.now()
	if v.keys != nil && !force && now.Sub(v.fetched) < v.ttl {
		ks := v.keys
		v.mu.Unlock()
		return ks, nil
	}
	if v.usable(now) && !force && now.Before(v.retryAt) {
		ks := v.keys
		v.mu.Unlock()
		return ks, nil
	}
	if v.reading != nil && v.usable(now) && !force {
		// Another request is reading the keys: this one need not wait.
		ks := v.keys
		v.mu.Unlock()
		return ks, nil
	}
	if v.reading == nil {
		if v.secrets == nil {
			v.mu.Unlock()
			return nil, gust.Errorf(gust.EUNAVAILABLE, "jwt auth needs the secret store")
		}
		v.reading = make(chan struct{})
		// The read is shared by every request that waits for it, so
		// one that hangs up must not end it.
		go v.read(context.WithoutCancel(ctx), v.reading)
	}
	done := v.reading
	v.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, gust.WrapError(gust.EUNAVAILABLE, ctx.Err(), "waiting for the route's JWT keys")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.usable(v.now()) {
		return v.keys, nil
	}
	if v.readErr != nil {
		return nil, v.readErr
	}
	return nil, gust.Errorf(gust.EUNAVAILABLE, "the route's JWT keys could not be read")
}

// usable reports whether v.keys may still verify at now: within their
// TTL, or within staleKeyGrace past it. Called with mu held.
func (v *jwtVerifier) usable(now time.Time) bool {
	return v.keys != nil && now.Sub(v.fetched) < v.ttl+staleKeyGrace
}

// read reads the keys from the secret store and stores the outcome, then
// closes done.
func (v *jwtVerifier) read(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, v.readTimeout)
	defer cancel()
	ks, final, err := v.fetch(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	switch {
	case err == nil:
		if v.outage != outageNone {
			v.log.Info("secret store readable again: route JWT keys fresh", "secret", v.secretName())
		}
		v.keys, v.fetched, v.seen, v.readErr, v.retryAt = ks, now, map[string]*verified{}, nil, time.Time{}
		v.outage = outageNone
	case final:
		// The secret is gone or holds no usable key: that is the
		// operator's word, and old keys must not outlive it.
		v.keys, v.seen, v.readErr, v.retryAt = nil, map[string]*verified{}, err, time.Time{}
		v.outage = outageNone
	default:
		v.readErr, v.retryAt = err, now.Add(keyRetryEvery)
		v.noteOutage(now, err)
	}
	v.reading = nil
	close(done)
}

// noteOutage logs, once per failure of the secret store, that the route
// verifies tokens with keys older than its TTL (a rotated or revoked key
// may still be accepted), and once more when those run out and its
// requests are refused. Called with mu held.
func (v *jwtVerifier) noteOutage(now time.Time, err error) {
	switch {
	case v.usable(now) && v.outage == outageNone:
		v.outage = outageStale
		v.log.Warn("secret store unreadable: route verifies JWTs with its last good keys until it can read them again",
			"secret", v.secretName(), "keysAge", now.Sub(v.fetched).Round(time.Second),
			"staleUntil", v.fetched.Add(v.ttl+staleKeyGrace), "err", err)
	case !v.usable(now) && v.keys != nil && v.outage != outageExpired:
		v.outage = outageExpired
		v.log.Error("secret store still unreadable: route's last good JWT keys are too old to use; its requests are refused",
			"secret", v.secretName(), "keysAge", now.Sub(v.fetched).Round(time.Second), "err", err)
	}
}

// secretName is the secret that holds the route's keys.
func (v *jwtVerifier) secretName() string {
	if v.cfg.Secret != "" {
		return v.cfg.Secret
	}
	return v.cfg.JWKS
}

// fetch reads and parses the route's key. final says an error is the
// secret's own (removed, or not a usable key) rather than the store's.
func (v *jwtVerifier) fetch(ctx context.Context) (ks *keySet, final bool, err error) {
	name := v.cfg.Secret
	if name == "" {
		name = v.cfg.JWKS
	}
	vals, err := v.secrets.Values(ctx, []string{name})
	if err != nil {
		return nil, gust.ErrorCode(err) == gust.ENOTFOUND, gust.WrapError(gust.EUNAVAILABLE, err, "reading the route's JWT key from secret %s", name)
	}
	ks = &keySet{}
	if v.cfg.Secret != "" {
		if len(vals[name]) < 32 {
			return nil, true, gust.Errorf(gust.EUNAVAILABLE, "secret %s is too short for an HS256 key: want at least 32 bytes", name)
		}
		ks.hmac = []byte(vals[name])
	} else {
		ks.public, err = parseJWKS([]byte(vals[name]))
		if err != nil {
			return nil, true, gust.WrapError(gust.EUNAVAILABLE, err, "secret %s is not a usable JWKS", name)
		}
	}
	return ks, false, nil
}

// verify checks a token's signature, algorithm, exp, nbf, iss and aud,
// and returns who it names. Errors: EUNAUTHORIZED naming what is wrong,
// EUNAVAILABLE if the keys cannot be read.
func (v *jwtVerifier) verify(ctx context.Context, tok string) (*verified, error) {
	if len(tok) > maxTokenBytes {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token: over %d bytes", maxTokenBytes)
	}
	if v.cfg.JWKS != "" && v.cfg.Audience == "" {
		// A version deployed before jwks needed an audience: it would
		// take any token its provider signed for any app, so it takes
		// none until it is deployed again with one.
		return nil, gust.Errorf(gust.EUNAVAILABLE, "this route's jwt settings name a jwks without an audience; deploy the function again with jwt.audience set")
	}
	now := v.now()
	var hit *verified
	v.mu.Lock()
	if v.keys != nil && now.Sub(v.fetched) < v.ttl {
		hit = v.seen[tok]
	}
	v.mu.Unlock()
	if hit != nil {
		leeway := v.leeway
		if !now.Before(hit.exp.Add(leeway)) {
			return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token: expired")
		}
		if !hit.nbf.IsZero() && now.Add(leeway).Before(hit.nbf) {
			return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token: not valid yet (nbf)")
		}
		return hit, nil
	}
	ks, err := v.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	claims, unknownKid, err := v.parse(tok, ks)
	if unknownKid && v.kidReadDue(now) {
		// A provider may have added a key since the last read.
		if ks, err = v.load(ctx, true); err != nil {
			return nil, err
		}
		claims, _, err = v.parse(tok, ks)
	}
	if err != nil {
		return nil, err
	}
	out := &verified{}
	out.subject, _ = claims["sub"].(string)
	if out.claims, err = json.Marshal(claims); err != nil {
		return nil, gust.WrapError(gust.EUNAUTHORIZED, err, "invalid token claims")
	}
	out.header = string(out.claims)
	exp, err1 := claims.GetExpirationTime()
	nbf, err2 := claims.GetNotBefore()
	if err1 != nil || err2 != nil || exp == nil {
		return out, nil // verified, but not cacheable
	}
	out.exp = exp.Time
	if nbf != nil {
		out.nbf = nbf.Time
	}
	v.mu.Lock()
	if v.keys == ks { // not replaced while this token was checked
		if len(v.seen) >= maxSeen {
			clear(v.seen)
		}
		v.seen[tok] = out
	}
	v.mu.Unlock()
	return out, nil
}

// kidReadDue reports whether a token naming an unknown key id may make
// the keys be read again now, and if so counts that read.
func (v *jwtVerifier) kidReadDue(now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.kidRead.IsZero() && now.Sub(v.kidRead) < kidReadEvery {
		return false
	}
	v.kidRead = now
	return true
}

// parse checks tok with ks. unknownKid says it was refused for naming a
// key id that ks does not have.
func (v *jwtVerifier) parse(tok string, ks *keySet) (claims jwt.MapClaims, unknownKid bool, err error) {
	claims = jwt.MapClaims{}
	_, err = v.parser.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if ks.hmac != nil {
			return ks.hmac, nil
		}
		kid, _ := t.Header["kid"].(string)
		if k, ok := ks.public[kid]; ok {
			return k, nil
		}
		if kid == "" && len(ks.public) == 1 {
			for _, k := range ks.public {
				return k, nil
			}
		}
		return nil, errUnknownKid
	})
	if err != nil {
		return nil, errors.Is(err, errUnknownKid), gust.Errorf(gust.EUNAUTHORIZED, "invalid token: %s", jwtReason(err))
	}
	return claims, false, nil
}

// jwtReason names why a token was refused, without echoing the token.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim (exp) is missing"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable (algorithm or key not accepted)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	}
	return "rejected"
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// maxJWKSKeys bounds a JWKS document.
const maxJWKSKeys = 64

// parseJWKS reads the RSA and P-256 EC public keys of a JWKS document
// (RFC 7517) by key id. Keys for other uses or curves are skipped; a
// document with no usable key is an error.
func parseJWKS(b []byte) (map[string]any, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("%d keys: at most %d", len(doc.Keys), maxJWKSKeys)
	}
	out := map[string]any{}
	for i, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key any
		switch k.Kty {
		case "RSA":
			n, err1 := b64int(k.N)
			e, err2 := b64int(k.E)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			if n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
				return nil, fmt.Errorf("key %d: RSA key must have at least 2048 bits and a sane exponent", i+1)
			}
			key = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			if k.Crv != "P-256" {
				continue
			}
			x, err1 := b64int(k.X)
			y, err2 := b64int(k.Y)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			pub, err := ecdsaP256(x, y)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			key = pub
		default:
			continue
		}
		if _, dup := out[k.Kid]; dup {
			return nil, fmt.Errorf("key id %q twice", k.Kid)
		}
		out[k.Kid] = key
	}
	if len(out) == 0 {
		return nil, errors.New("no RSA or P-256 signing key")
	}
	return out, nil
}

func b64int(s string) (*big.Int, error) {
	if s == "" || len(s) > 1024 {
		return nil, errors.New("missing or oversized key parameter")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("key parameter is not base64url: %w", err)
	}
	return new(big.Int).SetBytes(b), nil
}

// ecdsaP256 builds a P-256 public key, refusing points off the curve.
func ecdsaP256(x, y *big.Int) (*ecdsa.PublicKey, error) {
	if x.BitLen() > 256 || y.BitLen() > 256 {
		return nil, errors.New("EC point is not on P-256")
	}
	// Uncompressed SEC 1 encoding, which ParseUncompressedPublicKey checks
	// is on the curve.
	buf := make([]byte, 65)
	buf[0] = 4
	x.FillBytes(buf[1:33])
	y.FillBytes(buf[33:])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), buf)
	if err != nil {
		return nil, fmt.Errorf("EC point is not on P-256: %w", err)
	}
	return pub, nil
}
