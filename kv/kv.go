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

// Default limits of a function's bucket. One function must not be able
// to fill the disk that every function's state, code and queue share.
const (
	DefaultMaxBucketBytes = 1 << 30 // all of a bucket's keys and values
	DefaultMaxValueBytes  = 1 << 20 // one value
	// DefaultMaxListScan bounds the keys one listing reads; see
	// Bucket.List.
	DefaultMaxListScan = 10_000
)

// Store opens and removes the buckets of functions.
type Store struct {
	js       jetstream.JetStream
	replicas int
	maxBytes int64
	maxValue int32
	maxScan  int

	mu      sync.Mutex
	buckets map[string]*Bucket
}

// Option changes a Store's limits.
type Option func(*Store)

// WithMaxBucketBytes bounds the bytes of each bucket, its keys and
// values together, as JetStream counts them (default
// DefaultMaxBucketBytes); a Put that would pass it fails. It applies to
// buckets that exist too, the next time they are opened.
//
//	kv.New(js, 1, kv.WithMaxBucketBytes(256<<20))
func WithMaxBucketBytes(n int64) Option { return func(s *Store) { s.maxBytes = n } }

// WithMaxValueBytes bounds one value (default DefaultMaxValueBytes).
//
//	kv.New(js, 1, kv.WithMaxValueBytes(64<<10))
func WithMaxValueBytes(n int32) Option { return func(s *Store) { s.maxValue = n } }

// WithMaxListScan bounds the keys one listing reads (default
// DefaultMaxListScan).
//
//	kv.New(js, 1, kv.WithMaxListScan(100_000))
func WithMaxListScan(n int) Option { return func(s *Store) { s.maxScan = n } }

// New returns a Store whose buckets have replicas replicas (0 means 1).
// A limit given as 0 or less takes its default.
func New(js jetstream.JetStream, replicas int, opts ...Option) *Store {
	s := &Store{js: js, replicas: replicas, buckets: map[string]*Bucket{}}
	for _, o := range opts {
		o(s)
	}
	if s.maxBytes <= 0 {
		s.maxBytes = DefaultMaxBucketBytes
	}
	if s.maxValue <= 0 {
		s.maxValue = DefaultMaxValueBytes
	}
	if s.maxScan <= 0 {
		s.maxScan = DefaultMaxListScan
	}
	return s
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
		// JetStream refuses a write past these (a KV bucket discards
		// new messages, never old ones), so a full bucket keeps what
		// it holds.
		MaxBytes:     s.maxBytes,
		MaxValueSize: s.maxValue,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value store of %s: %w", function, err)
	}
	b := &Bucket{function: function, kv: kv, maxBytes: s.maxBytes, maxValue: s.maxValue, maxScan: s.maxScan}
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
	maxBytes int64
	maxValue int32
	maxScan  int
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

// Put sets the value of key. Errors: EINVALID; ETOOLARGE for a value
// over the store's limit or a bucket that is full.
func (b *Bucket) Put(ctx context.Context, key string, value []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if len(value) > int(b.maxValue) {
		return gust.Errorf(gust.ETOOLARGE, "value of %d bytes is over the limit of %d", len(value), b.maxValue)
	}
	if _, err := b.kv.Put(ctx, key, value); err != nil {
		if isFull(err) {
			return gust.WrapError(gust.ETOOLARGE, err, "the key-value store of %s is full (its limit is %d bytes): delete keys to make room", b.function, b.maxBytes)
		}
		return b.fail("set", err)
	}
	return nil
}

// isFull reports whether a write was refused for the bucket's MaxBytes:
// JetStream's store failure (10077) whose description says so.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10077 && strings.Contains(apiErr.Description, "maximum bytes")
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

// Keys is List without saying whether the list was cut short.
func (b *Bucket) Keys(ctx context.Context, prefix string, limit int) ([]string, error) {
	keys, _, err := b.List(ctx, prefix, limit)
	return keys, err
}

// List lists up to limit keys that start with prefix, sorted (a limit of
// 0 or less means the store's scan bound). It reads at most the store's
// scan bound of keys (WithMaxListScan) in the bucket's own order, the
// order of their last writes, so a bucket of millions of keys costs a
// listing no more than that. truncated says keys were left out: more
// matched than limit, or the scan stopped before the bucket's end, when
// the keys returned are the first sorted of those it read. A narrower
// prefix lists the rest.
func (b *Bucket) List(ctx context.Context, prefix string, limit int) (keys []string, truncated bool, err error) {
	if limit <= 0 || limit > b.maxScan {
		limit = b.maxScan
	}
	// JetStream filters on whole '.'-separated tokens: narrow to the
	// tokens the prefix completes, then match the rest here.
	filter := ">"
	if i := strings.LastIndexByte(prefix, '.'); i > 0 && ValidateKey(prefix[:i]) == nil {
		filter = prefix[:i+1] + ">"
	}
	lister, err := b.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, false, b.fail("list", err)
	}
	defer lister.Stop()
	read := 0
	for k := range lister.Keys() {
		if read == b.maxScan {
			truncated = true
			break
		}
		read++
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	// The lister may report a key twice while the bucket is written.
	keys = slices.Compact(keys)
	if len(keys) > limit {
		keys, truncated = keys[:limit], true
	}
	return keys, truncated, nil
}

func (b *Bucket) fail(op string, err error) error {
	// A removed bucket's stream no longer answers.
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders) {
		return gust.WrapError(gust.EUNAVAILABLE, err, "the key-value store of %s was removed", b.function)
	}
	return gust.WrapError(gust.EINTERNAL, err, "key-value %s failed", op)
}
