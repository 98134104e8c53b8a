package invoke

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if len(id) != 32 {
			t.Fatalf("id %q: %d digits, want 32", id, len(id))
		}
		if _, err := hex.DecodeString(id); err != nil {
			t.Fatalf("id %q: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("id %q twice", id)
		}
		seen[id] = true
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID()
	}
}

// BenchmarkNewIDCryptoRand is the way NewID was made before, for
// comparison.
func BenchmarkNewIDCryptoRand(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var r [16]byte
		_, _ = rand.Read(r[:])
		_ = hex.EncodeToString(r[:])
	}
}
