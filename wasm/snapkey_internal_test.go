package wasm

import (
	"testing"

	"github.com/gustfaas/gust"
)

// Every part of the configuration that initialization can see changes the
// snapshot key; what it cannot see (the version number, the timeout)
// does not.
func TestSnapshotKeyCoversInit(t *testing.T) {
	code := []byte("\x00asm\x01\x00\x00\x00")
	base := gust.Spec{Runtime: gust.RuntimeWasm, MemoryMB: 128, Env: map[string]string{"A": "1"},
		Files: &gust.Files{Digest: "sha256:a"}, AllowedHosts: []string{"a.test"}}
	key := func(fn string, s gust.Spec) [32]byte { return snapshotKey(code, fn, s) }
	want := key("fn", base)
	same := base
	same.Timeout = gust.Duration(1)
	same.MaxConcurrency = 7
	if key("fn", same) != want {
		t.Error("the timeout or concurrency changed the key")
	}
	for name, change := range map[string]func(s *gust.Spec){
		"memory":        func(s *gust.Spec) { s.MemoryMB = 64 },
		"env value":     func(s *gust.Spec) { s.Env = map[string]string{"A": "2"} },
		"env key":       func(s *gust.Spec) { s.Env = map[string]string{"B": "1"} },
		"files digest":  func(s *gust.Spec) { s.Files = &gust.Files{Digest: "sha256:b"} },
		"no files":      func(s *gust.Spec) { s.Files = nil },
		"allowed hosts": func(s *gust.Spec) { s.AllowedHosts = []string{"b.test"} },
		"kv":            func(s *gust.Spec) { s.KV = true },
	} {
		s := base
		change(&s)
		if key("fn", s) == want {
			t.Errorf("%s: same key", name)
		}
	}
	if key("other", base) == want {
		t.Error("function name (the guest's argument): same key")
	}
	if snapshotKey(append(code, 0), "fn", base) == want {
		t.Error("code: same key")
	}
}
