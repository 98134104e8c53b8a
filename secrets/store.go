package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/httperr"
)

// Bucket is the KV bucket of sealed secrets.
const Bucket = "gust_secrets"

// MaxValueBytes bounds one secret's value.
const MaxValueBytes = 64 << 10

// Info describes a secret, never its value.
type Info struct {
	Name      string    `json:"name"`
	KeyID     string    `json:"keyId"`
	UpdatedAt time.Time `json:"updatedAt"`
}

type sealed struct {
	Info
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// Store keeps sealed secrets in JetStream KV.
type Store struct {
	kv   jetstream.KeyValue
	keys *Keyring
	now  func() time.Time
}

// Open opens (creating if needed) the secret bucket.
func Open(ctx context.Context, js jetstream.JetStream, replicas int, keys *Keyring) (*Store, error) {
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "gust secrets, sealed with AES-256-GCM", Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("secret bucket: %w", err)
	}
	return &Store{kv: kv, keys: keys, now: time.Now}, nil
}

func seal(key []byte, name string, value []byte) (nonce, ct []byte, err error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	// The name is additional data: a ciphertext moved to another name
	// does not open.
	return nonce, gcm.Seal(nil, nonce, value, []byte(name)), nil
}

func open(key []byte, name string, nonce, ct []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return gcm.Open(nil, nonce, ct, []byte(name))
}

// Set stores value under name, sealed with the current key.
func (s *Store) Set(ctx context.Context, name string, value []byte) error {
	if err := gust.ValidateSecretName(name); err != nil {
		return err
	}
	if len(value) > MaxValueBytes {
		return gust.Errorf(gust.EINVALID, "secret %s is over the limit of %d bytes", name, MaxValueBytes)
	}
	id, key := s.keys.Current()
	nonce, ct, err := seal(key, name, value)
	if err != nil {
		return fmt.Errorf("sealing secret %s: %w", name, err)
	}
	b, err := json.Marshal(sealed{Info: Info{Name: name, KeyID: id, UpdatedAt: s.now().UTC()}, Nonce: nonce, Ciphertext: ct})
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, name, b); err != nil {
		return fmt.Errorf("storing secret %s: %w", name, err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, name string) (*sealed, uint64, error) {
	if err := gust.ValidateSecretName(name); err != nil {
		return nil, 0, err
	}
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, gust.Errorf(gust.ENOTFOUND, "no secret %s", name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading secret %s: %w", name, err)
	}
	var sv sealed
	if err := json.Unmarshal(e.Value(), &sv); err != nil {
		return nil, 0, fmt.Errorf("reading secret %s: %w", name, err)
	}
	return &sv, e.Revision(), nil
}

func (s *Store) unseal(sv *sealed) ([]byte, error) {
	key, ok := s.keys.Key(sv.KeyID)
	if !ok {
		return nil, gust.Errorf(gust.EUNAVAILABLE, "secret %s is sealed with master key %s, which this node does not have", sv.Name, sv.KeyID)
	}
	v, err := open(key, sv.Name, sv.Nonce, sv.Ciphertext)
	if err != nil {
		return nil, gust.Errorf(gust.EUNAVAILABLE, "secret %s does not open with master key %s (tampered or wrong key)", sv.Name, sv.KeyID)
	}
	return v, nil
}

// Exists reports whether every name is a stored secret. Errors: EINVALID
// naming the first missing one.
func (s *Store) Exists(ctx context.Context, names []string) error {
	for _, n := range names {
		if _, _, err := s.get(ctx, n); err != nil {
			if gust.ErrorCode(err) == gust.ENOTFOUND {
				return gust.Errorf(gust.EINVALID, "secret %s does not exist: gust secret set %s", n, n)
			}
			return err
		}
	}
	return nil
}

// Values opens the named secrets for a function's environment.
func (s *Store) Values(ctx context.Context, names []string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		sv, _, err := s.get(ctx, n)
		if err != nil {
			return nil, err
		}
		v, err := s.unseal(sv)
		if err != nil {
			return nil, err
		}
		out[n] = string(v)
	}
	return out, nil
}

// List describes every secret, by name.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	var out []Info
	for k := range keys.Keys() {
		sv, _, err := s.get(ctx, k)
		if err != nil {
			continue
		}
		out = append(out, sv.Info)
	}
	slices.SortFunc(out, func(a, b Info) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}

// Delete removes a secret. Errors: ENOTFOUND.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, _, err := s.get(ctx, name); err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, name); err != nil {
		return fmt.Errorf("deleting secret %s: %w", name, err)
	}
	return nil
}

// RotateKey makes a new master key, re-encrypts every secret under it and
// then forgets the old keys. It returns the new key id and how many
// secrets were re-encrypted.
func (s *Store) RotateKey(ctx context.Context) (string, int, error) {
	infos, err := s.List(ctx)
	if err != nil {
		return "", 0, err
	}
	id, err := s.keys.add()
	if err != nil {
		return "", 0, gust.WrapError(gust.EINVALID, err, "rotating the master key")
	}
	n := 0
	for _, info := range infos {
		sv, rev, err := s.get(ctx, info.Name)
		if err != nil {
			return id, n, err
		}
		v, err := s.unseal(sv)
		if err != nil {
			return id, n, err
		}
		_, key := s.keys.Current()
		nonce, ct, err := seal(key, sv.Name, v)
		if err != nil {
			return id, n, err
		}
		b, _ := json.Marshal(sealed{Info: Info{Name: sv.Name, KeyID: id, UpdatedAt: s.now().UTC()}, Nonce: nonce, Ciphertext: ct})
		if _, err := s.kv.Update(ctx, sv.Name, b, rev); err != nil {
			return id, n, fmt.Errorf("re-encrypting secret %s: %w", sv.Name, err)
		}
		n++
	}
	if err := s.keys.retire(); err != nil {
		return id, n, err
	}
	return id, n, nil
}

// Routes are the secret routes (admin scope): PUT /v1/secrets/{secret}
// (the raw value as body), GET /v1/secrets, DELETE /v1/secrets/{secret},
// POST /v1/secrets/rotate-key.
func (s *Store) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"PUT /v1/secrets/{secret}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(io.LimitReader(r.Body, MaxValueBytes+1))
			if err != nil {
				httperr.Write(w, r, gust.Errorf(gust.EINVALID, "reading the secret value failed"))
				return
			}
			if len(b) == 0 {
				httperr.Write(w, r, gust.Errorf(gust.EINVALID, "empty secret value"))
				return
			}
			name := r.PathValue("secret")
			if err := s.Set(r.Context(), name, b); err != nil {
				httperr.Write(w, r, err)
				return
			}
			sv, _, err := s.get(r.Context(), name)
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			httperr.WriteJSON(w, http.StatusOK, sv.Info)
		}),
		"GET /v1/secrets": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			infos, err := s.List(r.Context())
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			if infos == nil {
				infos = []Info{}
			}
			httperr.WriteJSON(w, http.StatusOK, map[string]any{"secrets": infos})
		}),
		"DELETE /v1/secrets/{secret}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := s.Delete(r.Context(), r.PathValue("secret")); err != nil {
				httperr.Write(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}),
		"POST /v1/secrets/rotate-key": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, n, err := s.RotateKey(r.Context())
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			httperr.WriteJSON(w, http.StatusOK, map[string]any{"keyId": id, "reencrypted": n})
		}),
	}
}
