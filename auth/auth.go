package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gustfaas/gust"
)

// TokenFile is the admin token's file name inside the data dir.
const TokenFile = "admin.token"

// Auth checks bearer tokens.
type Auth struct {
	admin [sha256.Size]byte
	dir   string // the data dir holding TokenFile
}

// LoadOrCreate reads DATA/admin.token, creating it with a new random token
// (mode 0600) if it does not exist. created reports whether it was made now.
func LoadOrCreate(dataDir string) (a *Auth, path string, created bool, err error) {
	path = filepath.Join(dataDir, TokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		// Refused like the master key: a token others can read gives them
		// the whole platform, and saying so beats serving with it.
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, path, false, fmt.Errorf("admin token file %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return nil, path, false, fmt.Errorf("admin token in %s is too short; delete the file to make a new one", path)
		}
		return &Auth{admin: sha256.Sum256([]byte(tok)), dir: dataDir}, path, false, nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, path, false, fmt.Errorf("reading admin token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, path, false, fmt.Errorf("making admin token: %w", err)
	}
	tok := "gust_" + hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, path, false, fmt.Errorf("writing admin token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return nil, path, false, fmt.Errorf("writing admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, path, false, fmt.Errorf("writing admin token: %w", err)
	}
	return &Auth{admin: sha256.Sum256([]byte(tok)), dir: dataDir}, path, true, nil
}

func (a *Auth) matches(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1
}

// bearer returns the request's bearer token. Errors: EUNAUTHORIZED.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", gust.Errorf(gust.EUNAUTHORIZED, "missing bearer token: send 'Authorization: Bearer TOKEN'")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", gust.Errorf(gust.EUNAUTHORIZED, "malformed Authorization header: want 'Bearer TOKEN'")
	}
	return tok, nil
}
