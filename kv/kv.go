package kv

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
)

// BucketPrefix starts the name of every function's bucket.
const BucketPrefix = "gust_kv_"

// MaxKeyLen bounds a key.
const MaxKeyLen = 512

var keyRE = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// ValidateKey reports whether key can name a value. The error is EINVALID.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return gust.Errorf(gust.EINVALID, "empty key")
	case len(key) > MaxKeyLen:
		return gust.Errorf(gust.EINVALID, "key of %d characters is over the limit of %d", len(key), MaxKeyLen)
	case !keyRE.MatchString(key):
		return gust.Errorf(gust.EINVALID, "invalid key %q: use letters, digits and - / _ = .", key)
	case strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, ".."):
		return gust.Errorf(gust.EINVALID, "invalid key %q: '.' separates parts of a key and cannot start, end or repeat", key)
	}
	return nil
}

// Store opens and removes the buckets of functions.
type Store struct {
	js       jetstream.JetStream
	replicas int

	mu      sync.Mutex
	buckets map[string]*Bucket
}

// New returns a Store whose buckets have replicas replicas (0 means 1).
func New(js jetstream.JetStream, replicas int) *Store {
	return &Store{js: js, replicas: replicas, buckets: map[string]*Bucket{}}
}

// BucketName returns the bucket of function.
func BucketName(function string) string { return BucketPrefix + function }

// Open returns function's bucket, creating it if it does not exist.
// Errors: EINVALID for a bad function name.
func (s *Store) Open(ctx context.Context, function string) (*Bucket, error) {
	if err := gust.ValidateName(function); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[function]; b != nil {
		return b, nil
	}
	kv, err := broker.EnsureKeyValue(ctx, s.js, jetstream.KeyValueConfig{
		Bucket:      BucketName(function),
		Description: "key-value store of gust function " + function,
		History:     1,
		Replicas:    s.replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value store of %s: %w", function, err)
	}
	b := &Bucket{function: function, kv: kv}
	s.buckets[function] = b
	return b, nil
}

// Remove deletes function's bucket and everything in it. Removing a
// bucket that does not exist is not an error.
func (s *Store) Remove(ctx context.Context, function string) error {
	if err := gust.ValidateName(function); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.buckets, function)
	err := s.js.DeleteKeyValue(ctx, BucketName(function))
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("remove the key-value store of %s: %w", function, err)
	}
	return nil
}

// Bucket is one function's store.
type Bucket struct {
	function string
	kv       jetstream.KeyValue
}

// Get returns the value of key. Errors: ENOTFOUND, EINVALID.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, gust.Errorf(gust.ENOTFOUND, "no key %q", key)
	}
	if err != nil {
		return nil, b.fail("get", err)
	}
	return e.Value(), nil
}

// Put sets the value of key. Errors: EINVALID.
func (b *Bucket) Put(ctx context.Context, key string, value []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if _, err := b.kv.Put(ctx, key, value); err != nil {
		return b.fail("set", err)
	}
	return nil
}

// Delete removes key; a missing key is not an error. Errors: EINVALID.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	// Purge, not Delete: a deleted key's marker would linger in the
	// bucket's history for nothing.
	if err := b.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return b.fail("delete", err)
	}
	return nil
}

// Keys lists up to limit keys that start with prefix, sorted. A limit of
// 0 or less means no limit.
func (b *Bucket) Keys(ctx context.Context, prefix string, limit int) ([]string, error) {
	// JetStream filters on whole '.'-separated tokens: narrow to the
	// tokens the prefix completes, then match the rest here.
	filter := ">"
	if i := strings.LastIndexByte(prefix, '.'); i > 0 && ValidateKey(prefix[:i]) == nil {
		filter = prefix[:i+1] + ">"
	}
	lister, err := b.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, b.fail("list", err)
	}
	defer lister.Stop()
	var keys []string
	for k := range lister.Keys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	// The lister may report a key twice while the bucket is written.
	keys = slices.Compact(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, nil
}

func (b *Bucket) fail(op string, err error) error {
	// A removed bucket's stream no longer answers.
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders) {
		return gust.WrapError(gust.EUNAVAILABLE, err, "the key-value store of %s was removed", b.function)
	}
	return gust.WrapError(gust.EINTERNAL, err, "key-value %s failed", op)
}
