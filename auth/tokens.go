package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/httperr"
)

// Scopes a token can have. admin can do everything; deploy can change and
// read functions; read can only read; invoke can only invoke functions
// (through gateway routes that require a token).
const (
	ScopeAdmin  = "admin"
	ScopeDeploy = "deploy"
	ScopeRead   = "read"
	ScopeInvoke = "invoke"
)

// TokenBucket is the KV bucket holding tokens (hashed), shared by every
// node on the same JetStream.
const TokenBucket = "gust_tokens"

// Token describes an issued token. Its secret is shown once, at creation,
// and only its SHA-256 is stored.
type Token struct {
	ID        string    `json:"id"`
	Scope     string    `json:"scope"`
	Functions []string  `json:"functions,omitempty"` // empty: every function
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"` // zero: never
}

// createdToken is the answer to POST /v1/tokens: the only time the
// secret is shown.
type createdToken struct {
	Token
	Secret string `json:"token"`
}

type tokenRecord struct {
	Token
	Hash string `json:"hash"` // hex SHA-256 of the whole token string
}

// Principal is who a request authenticated as.
type Principal struct {
	TokenID   string // "admin" for the bootstrap token
	Scope     string
	Functions []string
}

// Allows reports whether p may act with scope on function ("" for a route
// that is not about one function). Errors: EFORBIDDEN naming what is
// missing.
func (p *Principal) Allows(scope, function string) error {
	if !covers(p.Scope, scope) {
		return gust.Errorf(gust.EFORBIDDEN, "token %s has scope %q; this needs %q", p.TokenID, p.Scope, scope)
	}
	if len(p.Functions) == 0 {
		return nil
	}
	if function == "" {
		return gust.Errorf(gust.EFORBIDDEN, "token %s is limited to functions %s; this route is not about one function", p.TokenID, strings.Join(p.Functions, ", "))
	}
	if !slices.Contains(p.Functions, function) {
		return gust.Errorf(gust.EFORBIDDEN, "token %s may not act on function %q", p.TokenID, function)
	}
	return nil
}

// covers reports whether a token of scope have may do what need requires.
func covers(have, need string) bool {
	switch have {
	case ScopeAdmin:
		return true
	case ScopeDeploy:
		return need == ScopeDeploy || need == ScopeRead
	default:
		return have == need
	}
}

// Tokens issues, checks and revokes tokens. It also accepts the bootstrap
// admin token of an Auth.
type Tokens struct {
	admin *Auth
	kv    jetstream.KeyValue
	now   func() time.Time
}

// OpenTokens opens (creating if needed) the token bucket.
func OpenTokens(ctx context.Context, js jetstream.JetStream, replicas int, admin *Auth) (*Tokens, error) {
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: TokenBucket, Description: "gust API tokens (SHA-256 only)", Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("token bucket: %w", err)
	}
	t := &Tokens{admin: admin, kv: kv, now: time.Now}
	if err := t.publishAdmin(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// adminPrefix starts the key of a node's bootstrap admin token in the token
// bucket. Each node keeps its own DATA/admin.token; publishing its hash
// makes it work on every node that shares the bucket, so an operator can
// use any node's admin token anywhere in a cluster.
const adminPrefix = "admin-"

// adminKey is where the bootstrap admin token with this hex SHA-256 is
// published: enough of the hash to be unique, never the token.
func adminKey(hash string) string { return adminPrefix + hash[:16] }

func (t *Tokens) publishAdmin(ctx context.Context) error {
	if t.admin == nil {
		return nil
	}
	hash := hex.EncodeToString(t.admin.admin[:])
	rec := tokenRecord{Token: Token{ID: adminKey(hash), Scope: ScopeAdmin, CreatedAt: t.now().UTC()}, Hash: hash}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := t.kv.Create(ctx, rec.ID, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("publishing the bootstrap admin token's hash: %w", err)
	}
	// A node whose admin.token was deleted and made anew withdraws the old
	// one from the cluster too: the key it last published is kept beside
	// the token.
	if t.admin.dir == "" {
		return nil
	}
	keyPath := filepath.Join(t.admin.dir, TokenFile+".published")
	if old, err := os.ReadFile(keyPath); err == nil {
		if prev := strings.TrimSpace(string(old)); prev != rec.ID && strings.HasPrefix(prev, adminPrefix) {
			if err := t.kv.Purge(ctx, prev); err != nil {
				return fmt.Errorf("withdrawing the previous bootstrap admin token %s: %w", prev, err)
			}
		}
	}
	if err := os.WriteFile(keyPath, []byte(rec.ID+"\n"), 0o600); err != nil {
		return fmt.Errorf("recording the published bootstrap admin token: %w", err)
	}
	return nil
}

// Create issues a token and returns its secret, which is not kept.
func (t *Tokens) Create(ctx context.Context, scope string, functions []string, ttl time.Duration) (string, *Token, error) {
	switch scope {
	case ScopeAdmin, ScopeDeploy, ScopeRead, ScopeInvoke:
	default:
		return "", nil, gust.Errorf(gust.EINVALID, "invalid scope %q: want admin, deploy, read or invoke", scope)
	}
	for _, f := range functions {
		if err := gust.ValidateName(f); err != nil {
			return "", nil, err
		}
	}
	if ttl < 0 {
		return "", nil, gust.Errorf(gust.EINVALID, "invalid expiry %s: must not be negative", ttl)
	}
	id, secret, hash, err := NewCredential("gust_")
	if err != nil {
		return "", nil, err
	}
	rec := tokenRecord{
		Token: Token{ID: id, Scope: scope, Functions: slices.Clone(functions), CreatedAt: t.now().UTC()},
		Hash:  hash,
	}
	if ttl > 0 {
		rec.ExpiresAt = rec.CreatedAt.Add(ttl)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", nil, err
	}
	if _, err := t.kv.Create(ctx, id, b); err != nil {
		return "", nil, fmt.Errorf("storing token: %w", err)
	}
	return secret, &rec.Token, nil
}

// List returns every token (never their secrets), oldest first.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	keys, err := t.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	var out []Token
	for k := range keys.Keys() {
		rec, err := t.get(ctx, k)
		if err != nil {
			continue
		}
		out = append(out, rec.Token)
	}
	slices.SortFunc(out, func(a, b Token) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Revoke deletes a token. Errors: ENOTFOUND; EINVALID for a node's
// bootstrap admin token, which lives in that node's data dir.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	if strings.HasPrefix(id, adminPrefix) {
		return gust.Errorf(gust.EINVALID, "token %s is a node's bootstrap admin token: to replace it, stop that node, delete its DATA/%s and start it again", id, TokenFile)
	}
	if _, err := t.get(ctx, id); err != nil {
		return err
	}
	if err := t.kv.Purge(ctx, id); err != nil {
		return fmt.Errorf("revoking token: %w", err)
	}
	return nil
}

func (t *Tokens) get(ctx context.Context, id string) (*tokenRecord, error) {
	if id == "" || len(id) > 32 || strings.ContainsAny(id, ".*> ") {
		return nil, gust.Errorf(gust.ENOTFOUND, "no token %q", id)
	}
	e, err := t.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, gust.Errorf(gust.ENOTFOUND, "no token %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading token: %w", err)
	}
	var rec tokenRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("reading token %s: %w", id, err)
	}
	return &rec, nil
}

// Authenticate finds who the request's bearer token belongs to. Errors:
// EUNAUTHORIZED naming what is wrong.
func (t *Tokens) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	tok, err := bearer(r)
	if err != nil {
		return nil, err
	}
	if t.admin != nil && t.admin.matches(tok) {
		return &Principal{TokenID: "admin", Scope: ScopeAdmin}, nil
	}
	if isBootstrapShape(tok) {
		// Another node's bootstrap admin token, published in the bucket.
		sum := sha256.Sum256([]byte(tok))
		rec, err := t.get(ctx, adminKey(hex.EncodeToString(sum[:])))
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token")
		}
		if err != nil {
			return nil, err
		}
		if !CredentialMatches(tok, rec.Hash) {
			return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token")
		}
		return &Principal{TokenID: rec.ID, Scope: ScopeAdmin}, nil
	}
	id, ok := CredentialID("gust_", tok)
	if !ok {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token")
	}
	rec, err := t.get(ctx, id)
	if gust.ErrorCode(err) == gust.ENOTFOUND {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token")
	}
	if err != nil {
		return nil, err
	}
	if !CredentialMatches(tok, rec.Hash) {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid token")
	}
	if !rec.ExpiresAt.IsZero() && !t.now().Before(rec.ExpiresAt) {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "token %s expired at %s", rec.ID, rec.ExpiresAt.Format(time.RFC3339))
	}
	return &Principal{TokenID: rec.ID, Scope: rec.Scope, Functions: rec.Functions}, nil
}

// Require returns middleware that lets a request through only with a token
// whose scope covers scope and, for routes with a {name} path value, that
// may act on that function: 401 without a valid token, 403 with one that
// may not. The route it admits finds the Principal with PrincipalFrom.
func (t *Tokens) Require(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := t.Authenticate(r.Context(), r)
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			if err := p.Allows(scope, r.PathValue("name")); err != nil {
				httperr.Write(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p, as Require passes it on to the
// route it admits.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal Require admitted, nil if ctx carries
// none.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Permits is Allows for the principal in ctx: a route whose own scope is
// narrower asks it before doing what needs more (a deploy that gives a
// function a new secret needs admin). Errors: EFORBIDDEN, also when ctx
// carries no principal, so a route mounted without Require refuses.
func Permits(ctx context.Context, scope, function string) error {
	p := PrincipalFrom(ctx)
	if p == nil {
		return gust.Errorf(gust.EFORBIDDEN, "no authenticated token; this needs %q", scope)
	}
	return p.Allows(scope, function)
}

// Routes are the token routes (admin scope): POST /v1/tokens,
// GET /v1/tokens, DELETE /v1/tokens/{id}.
func (t *Tokens) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /v1/tokens": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				Scope     string   `json:"scope"`
				Functions []string `json:"functions"`
				Expires   string   `json:"expires"` // Go duration; "" never
			}
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid JSON body: %v", err))
				return
			}
			var ttl time.Duration
			if body.Expires != "" {
				d, err := time.ParseDuration(body.Expires)
				if err != nil {
					httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid expires %q: want a duration such as 720h", body.Expires))
					return
				}
				ttl = d
			}
			secret, tok, err := t.Create(r.Context(), body.Scope, body.Functions, ttl)
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			httperr.WriteJSON(w, http.StatusCreated, createdToken{Token: *tok, Secret: secret})
		}),
		"GET /v1/tokens": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			toks, err := t.List(r.Context())
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			if toks == nil {
				toks = []Token{}
			}
			httperr.WriteJSON(w, http.StatusOK, map[string]any{"tokens": toks})
		}),
		"DELETE /v1/tokens/{id}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := t.Revoke(r.Context(), r.PathValue("id")); err != nil {
				httperr.Write(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}),
	}
}

// isBootstrapShape reports whether tok looks like a bootstrap admin token:
// "gust_" and 64 hex digits, where issued tokens have "gust_ID_SECRET".
func isBootstrapShape(tok string) bool {
	rest, ok := strings.CutPrefix(tok, "gust_")
	if !ok || len(rest) != 64 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}
