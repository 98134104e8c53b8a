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
	"strconv"
	"sync"
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
	reg  gust.Registry // nil: Remove finds no uses
	// rotating is held (read) by Set from taking the current key until
	// its value is stored, and (write) by RotateKey while it makes a new
	// key current: once that is done, no value sealed with an old key is
	// still on its way to the bucket.
	rotating sync.RWMutex
	// rotation is held for a whole RotateKey: a second rotation would
	// make another key current while the first re-seals, and its retire
	// would drop the key the second is still re-sealing from.
	rotation sync.Mutex
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
	s.rotating.RLock()
	defer s.rotating.RUnlock()
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

// CheckUses makes Remove (and so DELETE /v1/secrets/{secret}) refuse a
// secret that versions of reg need (see Uses). Call it before serving
// Routes.
func (s *Store) CheckUses(reg gust.Registry) { s.reg = reg }

// Remove removes a secret unless a version an alias points to needs it
// (see Uses): then it answers ECONFLICT naming those versions, unless
// force, which removes it anyway. It returns the uses, which without the
// secret answer 503 until it is set again: a node that has a version
// loaded keeps its values until it loads it again (a restart), and one
// that loads it afterwards cannot. A deploy that races a Remove
// may still make a version live that needs it; that version answers 503
// naming the secret, as a forced Remove's do. Errors: ENOTFOUND,
// ECONFLICT.
func (s *Store) Remove(ctx context.Context, name string, force bool) ([]Use, error) {
	if _, _, err := s.get(ctx, name); err != nil {
		return nil, err
	}
	var uses []Use
	if s.reg != nil {
		var err error
		if uses, err = Uses(ctx, s.reg, name); err != nil {
			return nil, fmt.Errorf("finding the functions that use secret %s: %w", name, err)
		}
	}
	if len(uses) > 0 && !force {
		return uses, &usesError{uses: uses, err: gust.Errorf(gust.ECONFLICT,
			"secret %s is in use by %s; without it %s answer 503 on every call wherever %s loaded again (a restart, another node). "+
				"Deploy versions that do not use it (or point the aliases elsewhere) first, or remove it anyway with gust secret rm --force %s",
			name, describeUses(uses), them(uses), itIs(uses), name)}
	}
	if err := s.Delete(ctx, name); err != nil {
		return nil, err
	}
	return uses, nil
}

func them(uses []Use) string {
	if len(uses) == 1 {
		return "it would"
	}
	return "they would"
}

func itIs(uses []Use) string {
	if len(uses) == 1 {
		return "it is"
	}
	return "they are"
}

// Delete removes a secret, whoever uses it. Errors: ENOTFOUND.
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
// secrets were re-encrypted. A secret set or removed meanwhile is not lost:
// the list is taken once no Set can still store a value sealed with an old
// key, and a secret that changed since is read again.
func (s *Store) RotateKey(ctx context.Context) (string, int, error) {
	s.rotation.Lock()
	defer s.rotation.Unlock()
	s.rotating.Lock()
	id, err := s.keys.add()
	s.rotating.Unlock()
	if err != nil {
		return "", 0, gust.WrapError(gust.EINVALID, err, "rotating the master key")
	}
	infos, err := s.List(ctx)
	if err != nil {
		return id, 0, err
	}
	n := 0
	for _, info := range infos {
		if info.KeyID == id {
			continue // set since the new key became current
		}
		done, err := s.reseal(ctx, info.Name, id)
		if err != nil {
			return id, n, err
		}
		if done {
			n++
		}
	}
	if err := s.keys.retire(); err != nil {
		return id, n, err
	}
	return id, n, nil
}

// reseal seals the secret name again with the current key, id. It reports
// false if there was nothing to do: the secret was removed, or set again
// with the new key, since it was listed.
func (s *Store) reseal(ctx context.Context, name, id string) (bool, error) {
	for attempt := 0; ; attempt++ {
		sv, rev, err := s.get(ctx, name)
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if sv.KeyID == id {
			return false, nil
		}
		v, err := s.unseal(sv)
		if err != nil {
			return false, err
		}
		key, ok := s.keys.Key(id)
		if !ok {
			return false, fmt.Errorf("re-encrypting secret %s: master key %s is gone", sv.Name, id)
		}
		nonce, ct, err := seal(key, sv.Name, v)
		if err != nil {
			return false, err
		}
		b, _ := json.Marshal(sealed{Info: Info{Name: sv.Name, KeyID: id, UpdatedAt: s.now().UTC()}, Nonce: nonce, Ciphertext: ct})
		_, err = s.kv.Update(ctx, sv.Name, b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && attempt < 5 {
			continue // set or removed since it was read: read it again
		}
		if err != nil {
			return false, fmt.Errorf("re-encrypting secret %s: %w", sv.Name, err)
		}
		return true, nil
	}
}

// Removed is the answer to DELETE /v1/secrets/{secret}: the secret and,
// after ?force=true, the versions that now answer 503 (see Uses).
type Removed struct {
	Secret  string `json:"secret"`
	Failing []Use  `json:"failing"`
}

// Routes are the secret routes (admin scope): PUT /v1/secrets/{secret}
// (the raw value as body), GET /v1/secrets, DELETE
// /v1/secrets/{secret}[?force=true] (409 while an aliased version uses
// it, see Remove; answers Removed), POST /v1/secrets/rotate-key.
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
			force := false
			if v := r.URL.Query().Get("force"); v != "" {
				var err error
				if force, err = strconv.ParseBool(v); err != nil {
					httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid force %q: want true or false", v))
					return
				}
			}
			name := r.PathValue("secret")
			uses, err := s.Remove(r.Context(), name, force)
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			if uses == nil {
				uses = []Use{}
			}
			httperr.WriteJSON(w, http.StatusOK, Removed{Secret: name, Failing: uses})
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
