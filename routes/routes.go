package routes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/auth"
)

// Headers the function is given about the caller. Clients cannot send
// them: the gateway strips every X-Gust-Auth-* header before these are set.
const (
	HeaderPrefix  = "X-Gust-Auth-"
	HeaderMethod  = "X-Gust-Auth-Method"  // token, api-key or jwt; absent on auth: none
	HeaderSubject = "X-Gust-Auth-Subject" // token id, key id or the JWT's "sub"
	HeaderClaims  = "X-Gust-Auth-Claims"  // the JWT's claims as JSON (jwt only)
	HeaderRoute   = "X-Gust-Auth-Route"   // the matched route's ID
)

// HeaderAPIKey carries an API key (Authorization: Bearer gk_... works too).
const HeaderAPIKey = "X-Api-Key"

// TokenAuthenticator finds who a gust API token belongs to; *auth.Tokens
// is one.
type TokenAuthenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (*auth.Principal, error)
}

// Secrets gives JWT keys; *secrets.Store is one.
type Secrets interface {
	Values(ctx context.Context, names []string) (map[string]string, error)
	Exists(ctx context.Context, names []string) error
}

// Config configures a Router. A nil Tokens, Secrets or Keys makes routes
// that need it answer 503, and deploys that declare them fail.
type Config struct {
	Tokens  TokenAuthenticator
	Secrets Secrets
	Keys    *Keys
	// KeyTTL is how long a JWT key read from the secret store is used
	// before it is read again, so `gust secret set` rotates it within that
	// time (default 30s).
	KeyTTL time.Duration
	Now    func() time.Time // default time.Now
	// NewID makes the invocation id of an answer Guard refuses (default:
	// 32 random hex digits, the invoker's format).
	NewID  func() string
	Logger *slog.Logger
}

// Router guards the routes of every function. It is safe for concurrent
// use.
type Router struct {
	cfg Config
	log *slog.Logger
	// tables is never changed once stored, only replaced (under mu), so
	// the request path reads it without a lock.
	tables atomic.Pointer[map[versionKey]*table]
	mu     sync.Mutex
}

type versionKey struct {
	function string
	version  int
}

// maxTables bounds the cache of compiled versions; past it the cache
// starts over (old versions rarely serve once a new one is live).
const maxTables = 1024

// New returns a Router.
func New(cfg Config) *Router {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = newID
	}
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = 30 * time.Second
	}
	r := &Router{cfg: cfg, log: cfg.Logger}
	r.tables.Store(&map[versionKey]*table{})
	return r
}

// newID returns 16 random bytes in hex, as the invoker's ids are.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// table is the compiled routes of one version.
type table struct {
	routes []*route
}

type route struct {
	spec    gust.Route
	id      string
	segs    []string
	schema  *jsonschema.Schema
	fast    *fastSchema // nil: every body goes through schema
	jwt     *jwtVerifier
	limiter *limiter
}

// compile builds the table of a spec's routes; log is for its JWT
// verifiers. Errors are EINVALID.
func (r *Router) compile(spec gust.Spec, log *slog.Logger) (*table, error) {
	t := &table{}
	for i, rs := range spec.Routes {
		segs, err := gust.ValidateRoutePath(rs.Path)
		if err != nil {
			return nil, err
		}
		rt := &route{spec: rs, id: rs.ID(), segs: segs}
		if len(rs.Schema) > 0 {
			rt.schema, err = compileSchema(rs.Schema)
			if err != nil {
				return nil, gust.WrapError(gust.EINVALID, err, "route %d (%s): invalid schema", i+1, rt.id)
			}
			rt.fast = compileFast(rt.schema)
		}
		if rs.Auth == gust.AuthJWT && rs.JWT != nil {
			rt.jwt = newJWTVerifier(*rs.JWT, r.cfg.Secrets, r.cfg.KeyTTL, r.cfg.Now, log.With("route", rt.id))
		}
		if rs.RateLimit != nil {
			rt.limiter = newLimiter(*rs.RateLimit)
		}
		t.routes = append(t.routes, rt)
	}
	return t, nil
}

// ValidateSpec checks at deploy what Spec.Validate cannot: that every
// schema compiles and every secret a route names exists, and that the
// parts the routes need are configured. Errors are EINVALID.
func (r *Router) ValidateSpec(ctx context.Context, spec gust.Spec) error {
	if len(spec.Routes) == 0 {
		return nil
	}
	if _, err := r.compile(spec, r.log); err != nil {
		return err
	}
	var names []string
	for i, rs := range spec.Routes {
		switch rs.Auth {
		case gust.AuthToken:
			if r.cfg.Tokens == nil {
				return gust.Errorf(gust.EINVALID, "route %d (%s): token auth is not available on this server", i+1, rs.ID())
			}
		case gust.AuthAPIKey:
			if r.cfg.Keys == nil {
				return gust.Errorf(gust.EINVALID, "route %d (%s): api-key auth is not available on this server", i+1, rs.ID())
			}
		case gust.AuthJWT:
			if r.cfg.Secrets == nil {
				return gust.Errorf(gust.EINVALID, "route %d (%s): jwt auth needs the secret store", i+1, rs.ID())
			}
			// Rules a deploy must meet that versions stored before them
			// may not: those still load (Spec.Validate accepts them), and
			// the verifier closes what such a route would let through.
			//
			// An identity provider's keys sign the tokens of every app it
			// serves; only the audience says this one was issued for this
			// route, and the issuer is the same for all.
			if rs.JWT.JWKS != "" && rs.JWT.Audience == "" {
				return gust.Errorf(gust.EINVALID, "route %d (%s): jwt.jwks needs jwt.audience: the provider signs tokens for every app it serves with the same keys, so without an audience this route would accept any of them", i+1, rs.ID())
			}
			if rs.JWT.Leeway.D() > gust.MaxJWTLeeway {
				return gust.Errorf(gust.EINVALID, "route %d (%s): jwt leeway %s: want 0 to %s", i+1, rs.ID(), rs.JWT.Leeway, gust.MaxJWTLeeway)
			}
			if rs.JWT.Secret != "" {
				names = append(names, rs.JWT.Secret)
			}
			if rs.JWT.JWKS != "" {
				names = append(names, rs.JWT.JWKS)
			}
		}
	}
	if len(names) > 0 {
		if err := r.cfg.Secrets.Exists(ctx, names); err != nil {
			return err
		}
		// Parse the keys now, so a JWKS that holds no usable key fails
		// the deploy rather than every request.
		for i, rs := range spec.Routes {
			if rs.Auth != gust.AuthJWT {
				continue
			}
			v := newJWTVerifier(*rs.JWT, r.cfg.Secrets, r.cfg.KeyTTL, r.cfg.Now, r.log.With("route", rs.ID()))
			if _, err := v.loadKeys(ctx); err != nil {
				return gust.Errorf(gust.EINVALID, "route %d (%s): %s", i+1, rs.ID(), gust.ErrorMessage(err))
			}
		}
	}
	return nil
}

func (r *Router) table(v *gust.Version) (*table, error) {
	k := versionKey{v.Function, v.Number}
	if t, ok := (*r.tables.Load())[k]; ok {
		return t, nil
	}
	t, err := r.compile(v.Spec, r.log.With("function", v.Function, "version", v.Number))
	if err != nil {
		// The deploy checked this; a version that no longer compiles
		// is a bug, not the caller's fault.
		return nil, gust.WrapError(gust.EINTERNAL, err, "compiling routes of %s version %d", v.Function, v.Number)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := *r.tables.Load()
	if old, ok := cur[k]; ok {
		return old, nil // another request compiled it first; keep one limiter state
	}
	next := make(map[versionKey]*table, len(cur)+1)
	if len(cur) < maxTables {
		maps.Copy(next, cur)
	}
	next[k] = t
	r.tables.Store(&next)
	return t, nil
}

// match returns the first route of t that serves method and path.
func (t *table) match(method, path string) *route {
	for _, rt := range t.routes {
		if rt.spec.Method != "" && rt.spec.Method != method {
			continue
		}
		if matchPath(rt.segs, path) {
			return rt
		}
	}
	return nil
}

// matchPath matches path (starting with "/") against pattern segments
// without allocating: literals match exactly, "{x}" one non-empty segment,
// a last "{x...}" whatever is left.
func matchPath(segs []string, path string) bool {
	rest := strings.TrimPrefix(path, "/")
	if len(segs) == 0 {
		return rest == ""
	}
	for i, s := range segs {
		if strings.HasSuffix(s, "...}") && strings.HasPrefix(s, "{") {
			return true
		}
		seg, after, more := strings.Cut(rest, "/")
		if strings.HasPrefix(s, "{") {
			if seg == "" {
				return false
			}
		} else if seg != s {
			return false
		}
		if i == len(segs)-1 {
			return !more
		}
		if !more {
			// The path ended; only a final "{x...}" may match nothing.
			next := segs[i+1]
			return i+1 == len(segs)-1 && strings.HasPrefix(next, "{") && strings.HasSuffix(next, "...}")
		}
		rest = after
	}
	return false
}

// Admit decides, before the body is read, whether req may reach version
// v of its function; path is the part after /fn/NAME. For a version
// without routes it returns nil, nil. Otherwise it returns finish, which
// checks the body against the route's schema and sets the identity
// headers on header (the copy the function is given). Errors: ENOTFOUND
// (no route), EUNAUTHORIZED, EFORBIDDEN, ETHROTTLED (rate limit),
// EUNAVAILABLE (a key cannot be read).
func (r *Router) Admit(req *http.Request, v *gust.Version, path string) (finish func(body []byte, header http.Header) error, err error) {
	if len(v.Spec.Routes) == 0 {
		return nil, nil
	}
	t, err := r.table(v)
	if err != nil {
		return nil, err
	}
	rt := t.match(req.Method, path)
	if rt == nil {
		return nil, gust.Errorf(gust.ENOTFOUND, "function %s has no route for %s %s", v.Function, req.Method, path)
	}
	id, err := r.authenticate(req, v, rt)
	if err != nil {
		return nil, err
	}
	if rt.limiter != nil {
		key := id.subject
		if key == "" {
			key = clientIP(req)
		} else {
			key = id.method + ":" + key
		}
		if wait, ok := rt.limiter.allow(key, r.cfg.Now()); !ok {
			return nil, &throttled{msg: fmt.Sprintf("rate limit of route %s exceeded (%g requests a second, bursts of %d): retry in %s", rt.id, rt.limiter.rps, rt.limiter.burst, wait.Round(time.Millisecond)), wait: wait}
		}
	}
	return func(body []byte, header http.Header) error {
		if rt.schema != nil {
			if err := validateBody(rt.schema, rt.fast, body); err != nil {
				return err
			}
		}
		// The names are canonical already, and the values share one
		// array (each slice capped, so an Add copies rather than
		// overwrites): one allocation instead of one per header.
		if id.method == "" {
			header[HeaderRoute] = []string{rt.id}
			return nil
		}
		vals := []string{rt.id, id.method, id.subject, id.claims}
		header[HeaderRoute] = vals[0:1:1]
		header[HeaderMethod] = vals[1:2:2]
		header[HeaderSubject] = vals[2:3:3]
		if id.claims != "" {
			header[HeaderClaims] = vals[3:4:4]
		}
		// The credential was for gust; the function has no use for it
		// and must not be able to replay it against other functions.
		for _, h := range id.strip {
			header.Del(h)
		}
		return nil
	}, nil
}

// throttled is ETHROTTLED with how long to wait, for a Retry-After.
type throttled struct {
	msg  string
	wait time.Duration
}

func (e *throttled) Error() string { return e.msg }

// Unwrap makes the error read as ETHROTTLED to gust.ErrorCode.
func (e *throttled) Unwrap() error { return gust.Errorf(gust.ETHROTTLED, "%s", e.msg) }

// RetryAfter is how long the caller should wait before trying again.
func (e *throttled) RetryAfter() time.Duration { return e.wait }

type identity struct {
	method  string
	subject string
	claims  string // JSON; "" for none
	strip   []string
}

func (r *Router) authenticate(req *http.Request, v *gust.Version, rt *route) (identity, error) {
	ctx := req.Context()
	switch rt.spec.Auth {
	case "", gust.AuthNone:
		return identity{}, nil
	case gust.AuthToken:
		if r.cfg.Tokens == nil {
			return identity{}, gust.Errorf(gust.EUNAVAILABLE, "token auth is not available")
		}
		p, err := r.cfg.Tokens.Authenticate(ctx, req)
		if err != nil {
			return identity{}, err
		}
		if err := p.Allows(auth.ScopeInvoke, v.Function); err != nil {
			return identity{}, err
		}
		return identity{method: gust.AuthToken, subject: p.TokenID, strip: []string{"Authorization"}}, nil
	case gust.AuthAPIKey:
		if r.cfg.Keys == nil {
			return identity{}, gust.Errorf(gust.EUNAVAILABLE, "api-key auth is not available")
		}
		secret, from := apiKeyOf(req)
		if secret == "" {
			return identity{}, gust.Errorf(gust.EUNAUTHORIZED, "missing API key: send it in the %s header", HeaderAPIKey)
		}
		k, err := r.cfg.Keys.Check(ctx, v.Function, rt.id, secret)
		if err != nil {
			return identity{}, err
		}
		return identity{method: gust.AuthAPIKey, subject: k.ID, strip: []string{from}}, nil
	case gust.AuthJWT:
		tok, err := bearerToken(req)
		if err != nil {
			return identity{}, err
		}
		vt, err := rt.jwt.verify(ctx, tok)
		if err != nil {
			return identity{}, err
		}
		return identity{method: gust.AuthJWT, subject: vt.subject, claims: vt.header}, nil
	}
	return identity{}, gust.Errorf(gust.EINTERNAL, "route %s: unknown auth %q", rt.id, rt.spec.Auth)
}

func apiKeyOf(req *http.Request) (secret, header string) {
	if k := req.Header.Get(HeaderAPIKey); k != "" {
		return k, HeaderAPIKey
	}
	if tok, err := bearerToken(req); err == nil && strings.HasPrefix(tok, keyPrefix) {
		return tok, "Authorization"
	}
	return "", ""
}

func bearerToken(req *http.Request) (string, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return "", gust.Errorf(gust.EUNAUTHORIZED, "missing bearer token: send 'Authorization: Bearer TOKEN'")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", gust.Errorf(gust.EUNAUTHORIZED, "malformed Authorization header: want 'Bearer TOKEN'")
	}
	return tok, nil
}

// clientIP is the peer's address. Forwarding headers are not trusted:
// anyone can send them, and a limit keyed by them is no limit.
func clientIP(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// StripHeaders deletes every X-Gust-Auth-* header from h, so only the
// router can set them.
func StripHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len(HeaderPrefix) && strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix) {
			delete(h, k)
		}
	}
}
