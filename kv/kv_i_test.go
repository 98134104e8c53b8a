package kv_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/kv"
)

func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// One function must not fill the disk every function shares: a value
// over the limit and a write to a full bucket fail with a limit error,
// and a bucket made before the limits gets them when opened again.
func TestBucketLimits(t *testing.T) {
	ctx := context.Background()
	br := startBroker(t)
	// A bucket of the defaults takes what the small one below cannot.
	old, err := kv.New(br.JetStream(), 1).Open(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := old.Put(ctx, fmt.Sprint("k", i), make([]byte, 10_000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Put(ctx, "big", make([]byte, kv.DefaultMaxValueBytes+1)); gust.ErrorCode(err) != gust.ETOOLARGE {
		t.Fatalf("a value over the default limit: %v", err)
	}

	s := kv.New(br.JetStream(), 1, kv.WithMaxBucketBytes(100_000), kv.WithMaxValueBytes(20_000))
	b, err := s.Open(ctx, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	err = b.Put(ctx, "v", make([]byte, 20_001))
	if gust.ErrorCode(err) != gust.ETOOLARGE || !strings.Contains(gust.ErrorMessage(err), "value of 20001 bytes is over the limit of 20000") {
		t.Fatalf("a value over the limit: %v", err)
	}
	full := -1
	for i := range 20 {
		if err := b.Put(ctx, fmt.Sprint("k", i), make([]byte, 10_000)); err != nil {
			if gust.ErrorCode(err) != gust.ETOOLARGE || !strings.Contains(gust.ErrorMessage(err), "the key-value store of fresh is full") {
				t.Fatalf("put %d: %v", i, err)
			}
			full = i
			break
		}
	}
	if full < 5 || full > 10 {
		t.Fatalf("a bucket of 100000 bytes was full after %d values of 10000", full)
	}
	// What it holds is kept, and room made is usable.
	if v, err := b.Get(ctx, "k0"); err != nil || len(v) != 10_000 {
		t.Fatalf("k0 in a full bucket: %d bytes, %v", len(v), err)
	}
	for i := range full {
		if err := b.Delete(ctx, fmt.Sprint("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Put(ctx, "again", make([]byte, 10_000)); err != nil {
		t.Fatalf("after deleting: %v", err)
	}

	// The old bucket, opened by a Store with limits, is bound by them.
	old, err = s.Open(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Put(ctx, "more", []byte("x")); gust.ErrorCode(err) != gust.ETOOLARGE {
		t.Fatalf("a bucket over its new limit took a write: %v", err)
	}
	if v, err := old.Get(ctx, "k19"); err != nil || len(v) != 10_000 {
		t.Fatalf("the old bucket's values: %d bytes, %v", len(v), err)
	}
}

// Listing reads at most the scan bound of keys and says when it left
// some out.
func TestListIsBounded(t *testing.T) {
	ctx := context.Background()
	br := startBroker(t)
	s := kv.New(br.JetStream(), 1, kv.WithMaxListScan(50))
	b, err := s.Open(ctx, "many")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range 40 {
		k := fmt.Sprintf("a.%03d", 39-i)
		all = append(all, k)
		if err := b.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(all)
	for _, c := range []struct {
		prefix    string
		limit     int
		want      []string
		truncated bool
	}{
		{"a.", 100, all, false},
		{"a.", 0, all, false},
		{"a.", 10, all[:10], true},
		{"a.00", 100, all[:10], false},
		{"a.00", 3, all[:3], true},
		{"b", 10, nil, false},
	} {
		keys, truncated, err := b.List(ctx, c.prefix, c.limit)
		if err != nil || !slices.Equal(keys, c.want) || truncated != c.truncated {
			t.Errorf("List(%q, %d) = %v, %v, %v; want %v, %v", c.prefix, c.limit, keys, truncated, err, c.want, c.truncated)
		}
	}
	// Past the scan bound, a listing stops reading and says so, even
	// when what it found is under the limit.
	for i := range 40 {
		if err := b.Put(ctx, fmt.Sprintf("z%03d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	keys, truncated, err := b.List(ctx, "z", 100)
	if err != nil || !truncated || len(keys) > 10 {
		t.Fatalf("List(z) over 80 keys with a scan of 50: %d keys, truncated %v, %v", len(keys), truncated, err)
	}
	keys, err = b.Keys(ctx, "", 0)
	if err != nil || len(keys) != 50 {
		t.Fatalf("Keys with no limit: %d keys, %v; want the scan bound, 50", len(keys), err)
	}
}
