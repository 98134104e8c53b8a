package gust

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Route auth kinds.
const (
	AuthNone   = "none"    // anyone (the default)
	AuthToken  = "token"   // a gust API token with invoke scope on the function
	AuthAPIKey = "api-key" // a key issued for the function (and route) by `gust key create`
	AuthJWT    = "jwt"     // a JSON Web Token checked against Route.JWT
)

// Route is one HTTP route of a function under /fn/NAME: which requests it
// matches, who may call it, how often, and what body it accepts.
//
//	routes:
//	  - method: POST
//	    path: /readings/{sensor}
//	    auth: jwt
//	    jwt: {secret: SENSOR_JWT_KEY, issuer: https://id.example.com, audience: sensors}
//	    rateLimit: {rps: 10, burst: 20}
//	    schema: {type: object, required: [value], properties: {value: {type: number}}}
//
// Routes are tried in the order written; the first that matches serves.
type Route struct {
	// Name identifies the route for API keys (`gust key create NAME
	// --route ROUTE`); default "METHOD PATH", or PATH for any method.
	Name   string `json:"name,omitempty"`
	Method string `json:"method,omitempty"` // "GET", "POST", ...; empty matches any method
	// Path is matched against the path after /fn/NAME, segment by
	// segment: "/items/{id}" matches one segment for {id}, and a last
	// "{rest...}" matches the rest of the path (also nothing).
	Path      string     `json:"path"`
	Auth      string     `json:"auth,omitempty"` // none, token, api-key or jwt
	JWT       *RouteJWT  `json:"jwt,omitempty"`  // with auth: jwt
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// Schema is a JSON Schema (draft 2020-12) the request body must
	// match; a body that does not is answered 400 and the function does
	// not run. It is compiled at deploy, so a bad schema fails the deploy.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// ID is the route's name for API keys: Name, or "METHOD PATH".
func (r Route) ID() string {
	if r.Name != "" {
		return r.Name
	}
	if r.Method == "" {
		return r.Path
	}
	return r.Method + " " + r.Path
}

// RouteJWT says which JSON Web Tokens a jwt route accepts. Exactly one of
// Secret (HS256) and JWKS (RS256, ES256) is set; both name secrets of the
// secret store, so keys rotate with `gust secret set` and never enter the
// spec or the code.
type RouteJWT struct {
	Secret   string   `json:"secret,omitempty"`   // secret holding the HS256 key
	JWKS     string   `json:"jwks,omitempty"`     // secret holding a JWKS document ({"keys": [...]})
	Issuer   string   `json:"issuer,omitempty"`   // required "iss" when set
	Audience string   `json:"audience,omitempty"` // required in "aud" when set; required with JWKS
	Leeway   Duration `json:"leeway,omitempty"`   // clock skew allowed on exp and nbf, at most MaxJWTLeeway
}

// MaxJWTLeeway bounds RouteJWT.Leeway: clock skew is seconds, and a
// larger leeway keeps expired tokens valid.
const MaxJWTLeeway = 5 * time.Minute

// RateLimit is a token bucket: RPS requests a second on average, bursts of
// up to Burst (default: RPS rounded up). Each caller has its own bucket:
// the authenticated subject (token, key or JWT "sub"), else the client IP.
type RateLimit struct {
	RPS   float64 `json:"rps"`
	Burst int     `json:"burst,omitempty"`
}

var (
	methodRE    = regexp.MustCompile(`^[A-Z]{1,16}$`)
	wildcardRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	maxRoutes   = 64
	maxSchemaSz = 256 << 10
)

// ValidateRoutePath checks a route path pattern and returns its segments
// ("" for the root "/").
func ValidateRoutePath(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") || len(p) > 1024 {
		return nil, Errorf(EINVALID, "invalid route path %q: want a path starting with '/'", p)
	}
	if p == "/" {
		return nil, nil
	}
	segs := strings.Split(p[1:], "/")
	seen := map[string]bool{}
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			if strings.ContainsAny(s, "{}") || (s == "" && i != len(segs)-1) {
				return nil, Errorf(EINVALID, "invalid route path %q: segment %q", p, s)
			}
			continue
		}
		name, ok := strings.CutSuffix(s, "}")
		name = name[1:]
		if !ok {
			return nil, Errorf(EINVALID, "invalid route path %q: wildcard %q must fill its segment", p, s)
		}
		if rest, isRest := strings.CutSuffix(name, "..."); isRest {
			if i != len(segs)-1 {
				return nil, Errorf(EINVALID, "invalid route path %q: %q must be the last segment", p, s)
			}
			name = rest
		}
		if !wildcardRE.MatchString(name) {
			return nil, Errorf(EINVALID, "invalid route path %q: wildcard name %q", p, name)
		}
		if seen[name] {
			return nil, Errorf(EINVALID, "invalid route path %q: wildcard %q twice", p, name)
		}
		seen[name] = true
	}
	return segs, nil
}

func validateRoutes(routes []Route) error {
	if len(routes) > maxRoutes {
		return Errorf(EINVALID, "%d routes: at most %d", len(routes), maxRoutes)
	}
	ids := map[string]bool{}
	for i, r := range routes {
		at := func(format string, args ...any) error {
			return Errorf(EINVALID, "route %d (%s): %s", i+1, r.ID(), fmt.Sprintf(format, args...))
		}
		if r.Method != "" && !methodRE.MatchString(r.Method) {
			return at("invalid method %q: want an upper-case HTTP method such as GET, or none for any", r.Method)
		}
		if _, err := ValidateRoutePath(r.Path); err != nil {
			return at("%s", ErrorMessage(err))
		}
		if r.Name != "" && (len(r.Name) > 128 || strings.ContainsAny(r.Name, "\x00\r\n")) {
			return at("invalid name %q", r.Name)
		}
		if ids[r.ID()] {
			return at("two routes named %q: give them distinct names", r.ID())
		}
		ids[r.ID()] = true
		switch r.Auth {
		case "", AuthNone, AuthToken, AuthAPIKey:
			if r.JWT != nil {
				return at("jwt settings need auth: jwt")
			}
		case AuthJWT:
			j := r.JWT
			if j == nil || (j.Secret == "") == (j.JWKS == "") {
				return at("auth jwt needs jwt.secret (HS256) or jwt.jwks (RS256, ES256), exactly one")
			}
			for _, name := range []string{j.Secret, j.JWKS} {
				if name == "" {
					continue
				}
				if err := ValidateSecretName(name); err != nil {
					return at("%s", ErrorMessage(err))
				}
			}
			if j.Leeway.D() < 0 {
				return at("jwt leeway %s: want 0 to %s", j.Leeway, MaxJWTLeeway)
			}
		default:
			return at("invalid auth %q: want none, token, api-key or jwt", r.Auth)
		}
		if rl := r.RateLimit; rl != nil && (rl.RPS <= 0 || rl.RPS > 1e6 || rl.Burst < 0 || rl.Burst > 1e6) {
			return at("invalid rateLimit: want rps above 0 (at most 1e6) and burst 0 to 1e6")
		}
		if len(r.Schema) > 0 {
			if len(r.Schema) > maxSchemaSz {
				return at("schema over %d bytes", maxSchemaSz)
			}
			var v any
			if err := json.Unmarshal(r.Schema, &v); err != nil {
				return at("schema is not JSON: %v", err)
			}
			switch v.(type) {
			case map[string]any, bool:
			default:
				return at("schema must be an object or a boolean")
			}
		}
	}
	return nil
}
