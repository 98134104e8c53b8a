package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// Credentials (API tokens, route API keys) have one shape:
// PREFIX + id + "_" + secret, with an 8-byte hex id to look the record up
// and 32 random bytes of secret. Only the SHA-256 of the whole string is
// stored; it is shown once, at creation.

// NewCredential makes a credential with prefix and returns its id, the
// whole secret string, and the hex SHA-256 to store.
func NewCredential(prefix string) (id, secret, hash string, err error) {
	var idb [8]byte
	var sec [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", "", "", fmt.Errorf("making credential: %w", err)
	}
	if _, err := rand.Read(sec[:]); err != nil {
		return "", "", "", fmt.Errorf("making credential: %w", err)
	}
	id = hex.EncodeToString(idb[:])
	secret = prefix + id + "_" + hex.EncodeToString(sec[:])
	sum := sha256.Sum256([]byte(secret))
	return id, secret, hex.EncodeToString(sum[:]), nil
}

// CredentialID returns the id inside a credential with prefix, or false if
// the string does not have the credential's shape.
func CredentialID(prefix, secret string) (string, bool) {
	rest, ok := strings.CutPrefix(secret, prefix)
	id, _, ok2 := strings.Cut(rest, "_")
	return id, ok && ok2 && id != ""
}

// CredentialMatches reports, in constant time, whether secret hashes to
// the stored hex SHA-256.
func CredentialMatches(secret, hash string) bool {
	want, err := hex.DecodeString(hash)
	sum := sha256.Sum256([]byte(secret))
	return err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1
}
