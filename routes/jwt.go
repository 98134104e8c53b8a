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

func newJWTVerifier(cfg gust.RouteJWT, secrets Secrets, ttl time.Duration, now func() time.Time) *jwtVerifier {
	methods := []string{"HS256"}
	if cfg.JWKS != "" {
		methods = []string{"RS256", "ES256"}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(cfg.Leeway.D()),
		// A token without an expiry is valid forever once leaked.
		jwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &jwtVerifier{cfg: cfg, secrets: secrets, ttl: ttl, now: now, parser: jwt.NewParser(opts...)}
}

// loadKeys returns the route's keys, reading them from the secret store
// when the cached ones are older than ttl. Errors: EUNAVAILABLE.
func (v *jwtVerifier) loadKeys(ctx context.Context) (*keySet, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys != nil && v.now().Sub(v.fetched) < v.ttl {
		return v.keys, nil
	}
	if v.secrets == nil {
		return nil, gust.Errorf(gust.EUNAVAILABLE, "jwt auth needs the secret store")
	}
	name := v.cfg.Secret
	if name == "" {
		name = v.cfg.JWKS
	}
	vals, err := v.secrets.Values(ctx, []string{name})
	if err != nil {
		return nil, gust.WrapError(gust.EUNAVAILABLE, err, "reading the route's JWT key from secret %s", name)
	}
	ks := &keySet{}
	if v.cfg.Secret != "" {
		if len(vals[name]) < 32 {
			return nil, gust.Errorf(gust.EUNAVAILABLE, "secret %s is too short for an HS256 key: want at least 32 bytes", name)
		}
		ks.hmac = []byte(vals[name])
	} else {
		ks.public, err = parseJWKS([]byte(vals[name]))
		if err != nil {
			return nil, gust.WrapError(gust.EUNAVAILABLE, err, "secret %s is not a usable JWKS", name)
		}
	}
	v.keys, v.fetched, v.seen = ks, v.now(), map[string]*verified{}
	return ks, nil
}

// verify checks a token's signature, algorithm, exp, nbf, iss and aud,
// and returns who it names. Errors: EUNAUTHORIZED naming what is wrong,
// EUNAVAILABLE if the keys cannot be read.
func (v *jwtVerifier) verify(ctx context.Context, tok string) (*verified, error) {
	if len(tok) > maxTokenBytes {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token: over %d bytes", maxTokenBytes)
	}
	now := v.now()
	var hit *verified
	v.mu.Lock()
	if v.keys != nil && now.Sub(v.fetched) < v.ttl {
		hit = v.seen[tok]
	}
	v.mu.Unlock()
	if hit != nil {
		leeway := v.cfg.Leeway.D()
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
	claims, err := v.parse(tok, ks)
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

func (v *jwtVerifier) parse(tok string, ks *keySet) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
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
		return nil, fmt.Errorf("no key with id %q", kid)
	})
	if err != nil {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token: %s", jwtReason(err))
	}
	return claims, nil
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
