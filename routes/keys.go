package routes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/auth"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/httperr"
)

// KeyBucket is the KV bucket of API keys (their SHA-256 only).
const KeyBucket = "gust_api_keys"

// keyPrefix starts every API key, so one is recognizable in a leak scan.
const keyPrefix = "gk_"

// Key describes an API key of a function, never its secret.
type Key struct {
	ID       string `json:"id"`
	Function string `json:"function"`
	// Route is the ID of the one route the key opens; empty: every
	// api-key route of the function.
	Route     string    `json:"route,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

type keyRecord struct {
	Key
	Hash string `json:"hash"` // hex SHA-256 of the whole key
}

// Keys issues, checks and revokes API keys.
type Keys struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// OpenKeys opens (creating if needed) the API key bucket.
func OpenKeys(ctx context.Context, js jetstream.JetStream, replicas int) (*Keys, error) {
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: KeyBucket, Description: "gust API keys of function routes (SHA-256 only)", Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("api key bucket: %w", err)
	}
	return &Keys{kv: kv, now: time.Now}, nil
}

// Create issues a key for function (and route, if not empty) and returns
// its secret, which is not kept. Errors: EINVALID.
func (k *Keys) Create(ctx context.Context, function, route string) (string, *Key, error) {
	if err := gust.ValidateName(function); err != nil {
		return "", nil, err
	}
	if len(route) > 1100 || strings.ContainsAny(route, "\x00\r\n") {
		return "", nil, gust.Errorf(gust.EINVALID, "invalid route %q", route)
	}
	id, secret, hash, err := auth.NewCredential(keyPrefix)
	if err != nil {
		return "", nil, err
	}
	rec := keyRecord{
		Key:  Key{ID: id, Function: function, Route: route, CreatedAt: k.now().UTC()},
		Hash: hash,
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", nil, err
	}
	if _, err := k.kv.Create(ctx, id, b); err != nil {
		return "", nil, fmt.Errorf("storing api key: %w", err)
	}
	return secret, &rec.Key, nil
}

func (k *Keys) get(ctx context.Context, id string) (*keyRecord, error) {
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, gust.Errorf(gust.ENOTFOUND, "no api key %q", id)
	}
	e, err := k.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, gust.Errorf(gust.ENOTFOUND, "no api key %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading api key: %w", err)
	}
	var rec keyRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("reading api key %s: %w", id, err)
	}
	return &rec, nil
}

// List returns the keys of function, oldest first.
func (k *Keys) List(ctx context.Context, function string) ([]Key, error) {
	lister, err := k.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	out := []Key{}
	for id := range lister.Keys() {
		rec, err := k.get(ctx, id)
		if err != nil || rec.Function != function {
			continue
		}
		out = append(out, rec.Key)
	}
	slices.SortFunc(out, func(a, b Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Revoke deletes a key of function. Errors: ENOTFOUND.
func (k *Keys) Revoke(ctx context.Context, function, id string) error {
	rec, err := k.get(ctx, id)
	if err != nil {
		return err
	}
	if rec.Function != function {
		return gust.Errorf(gust.ENOTFOUND, "function %s has no api key %q", function, id)
	}
	if err := k.kv.Purge(ctx, id); err != nil {
		return fmt.Errorf("revoking api key: %w", err)
	}
	return nil
}

// RevokeAll deletes every key of function (when the function is deleted,
// so a new function of the same name does not inherit them) and returns
// how many there were.
func (k *Keys) RevokeAll(ctx context.Context, function string) (int, error) {
	keys, err := k.List(ctx, function)
	if err != nil {
		return 0, err
	}
	for i, key := range keys {
		if err := k.Revoke(ctx, function, key.ID); err != nil && gust.ErrorCode(err) != gust.ENOTFOUND {
			return i, err
		}
	}
	return len(keys), nil
}

// Check reports which key secret is, if it opens route of function.
// Errors: EUNAUTHORIZED for an unknown or malformed key, EFORBIDDEN for a
// key of another function or route.
func (k *Keys) Check(ctx context.Context, function, route, secret string) (*Key, error) {
	id, ok := auth.CredentialID(keyPrefix, secret)
	if !ok {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid API key")
	}
	rec, err := k.get(ctx, id)
	if gust.ErrorCode(err) == gust.ENOTFOUND {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid API key")
	}
	if err != nil {
		return nil, gust.WrapError(gust.EUNAVAILABLE, err, "checking API key")
	}
	if !auth.CredentialMatches(secret, rec.Hash) {
		return nil, gust.Errorf(gust.EUNAUTHORIZED, "invalid API key")
	}
	if rec.Function != function {
		return nil, gust.Errorf(gust.EFORBIDDEN, "API key %s is for function %s", rec.ID, rec.Function)
	}
	if rec.Route != "" && rec.Route != route {
		return nil, gust.Errorf(gust.EFORBIDDEN, "API key %s is for route %s, not %s", rec.ID, rec.Route, route)
	}
	return &rec.Key, nil
}

// createdKey is the answer to POST /v1/functions/{name}/keys: the only
// time the secret is shown.
type createdKey struct {
	Key
	Secret string `json:"key"`
}

// Routes are the admin routes of API keys, for the admin API to mount
// behind its scope checks: POST and GET /v1/functions/{name}/keys,
// DELETE /v1/functions/{name}/keys/{id}.
func (k *Keys) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /v1/functions/{name}/keys": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				Route string `json:"route"`
			}
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid JSON body: %v", err))
				return
			}
			secret, key, err := k.Create(r.Context(), r.PathValue("name"), body.Route)
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			httperr.WriteJSON(w, http.StatusCreated, createdKey{Key: *key, Secret: secret})
		}),
		"GET /v1/functions/{name}/keys": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			keys, err := k.List(r.Context(), r.PathValue("name"))
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			httperr.WriteJSON(w, http.StatusOK, map[string]any{"keys": keys})
		}),
		"DELETE /v1/functions/{name}/keys/{id}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := k.Revoke(r.Context(), r.PathValue("name"), r.PathValue("id")); err != nil {
				httperr.Write(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}),
	}
}
