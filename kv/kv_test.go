package kv_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/kv"
)

func store(t *testing.T) *kv.Store {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return kv.New(b.JetStream(), 1)
}

func TestBucket(t *testing.T) {
	ctx := context.Background()
	s := store(t)
	a, err := s.Open(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "stats.hits"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("get of a missing key: %v", err)
	}
	for _, k := range []string{"stats.hits", "stats.misses", "cache/x/y", "statsz"} {
		if err := a.Put(ctx, k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := a.Get(ctx, "stats.hits"); err != nil || string(v) != "v-stats.hits" {
		t.Fatalf("get = %q, %v", v, err)
	}
	for prefix, want := range map[string]string{
		"":        "cache/x/y,stats.hits,stats.misses,statsz",
		"stats.":  "stats.hits,stats.misses",
		"stats":   "stats.hits,stats.misses,statsz",
		"stats.h": "stats.hits",
		"cache/":  "cache/x/y",
		"nothing": "",
	} {
		keys, err := a.Keys(ctx, prefix, 0)
		if err != nil || strings.Join(keys, ",") != want {
			t.Fatalf("Keys(%q) = %v, %v; want %s", prefix, keys, err, want)
		}
	}
	if keys, _ := a.Keys(ctx, "", 2); len(keys) != 2 {
		t.Fatalf("limit 2: %v", keys)
	}
	if err := a.Delete(ctx, "stats.hits"); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "stats.hits"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := a.Get(ctx, "stats.hits"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("get after delete: %v", err)
	}

	// Buckets are per function.
	b, err := s.Open(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := b.Keys(ctx, "", 0); err != nil || len(keys) != 0 {
		t.Fatalf("b's keys: %v %v", keys, err)
	}

	if err := s.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "a"); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := a.Get(ctx, "statsz"); gust.ErrorCode(err) != gust.EUNAVAILABLE {
		t.Fatalf("get from a removed bucket: %v", err)
	}
	a2, err := s.Open(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := a2.Keys(ctx, "", 0); len(keys) != 0 {
		t.Fatalf("a recreated holds %v", keys)
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "a.b", "a/b-c_d=e", strings.Repeat("k", kv.MaxKeyLen)} {
		if err := kv.ValidateKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"", ".a", "a.", "a..b", "a b", "a*", "a>", "ü", strings.Repeat("k", kv.MaxKeyLen+1)} {
		var e *gust.Error
		if err := kv.ValidateKey(k); !errors.As(err, &e) || e.Code != gust.EINVALID {
			t.Errorf("%q: %v, want EINVALID", k, err)
		}
	}
}
