package secrets

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// KeyFile is the default keyring's name in the data dir.
const KeyFile = "master.key"

// Keyring holds the master keys: the current one seals, any of them opens.
type Keyring struct {
	mu      sync.RWMutex
	keys    map[string][]byte // id → 32-byte key
	current string
	path    string // "" when the key came from the environment: no rotation
}

func keyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("gust-master-key-id:"), key...))
	return hex.EncodeToString(sum[:6])
}

// LoadKeyring reads the master key: from envKey (base64 or hex of 32
// bytes) if set, else from file, else from DATA/master.key, creating it
// (mode 0600) if it does not exist. created reports a new key file.
func LoadKeyring(dataDir, file, envKey string) (k *Keyring, created bool, err error) {
	if envKey != "" {
		key, err := decodeKey(envKey)
		if err != nil {
			return nil, false, fmt.Errorf("GUST_MASTER_KEY: %w", err)
		}
		id := keyID(key)
		return &Keyring{keys: map[string][]byte{id: key}, current: id}, false, nil
	}
	if file == "" {
		file = filepath.Join(dataDir, KeyFile)
	}
	k = &Keyring{keys: map[string][]byte{}, path: file}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, false, fmt.Errorf("making master key: %w", err)
		}
		k.keys[keyID(key)], k.current = key, keyID(key)
		if err := k.save(); err != nil {
			return nil, false, err
		}
		return k, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading master key: %w", err)
	}
	if st, err := os.Stat(file); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("master key file %s is readable by others (mode %v): chmod 600 it", file, st.Mode().Perm())
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := decodeKey(line)
		if err != nil {
			return nil, false, fmt.Errorf("master key file %s: %w", file, err)
		}
		// The last key is the current one.
		k.keys[keyID(key)], k.current = key, keyID(key)
	}
	if k.current == "" {
		return nil, false, fmt.Errorf("master key file %s holds no key", file)
	}
	return k, false, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("a master key is 32 bytes, written as 64 hex digits or base64")
}

// save writes the keyring, current key last, atomically and mode 0600.
func (k *Keyring) save() error { return saveKeys(k.path, k.keys, k.current) }

// saveKeys writes keys to path, current last, atomically and mode 0600,
// and makes it durable (the file, then the directory that names it) before
// it returns: a key is used to seal only once a restart would find it.
func saveKeys(path string, keys map[string][]byte, current string) (err error) {
	var buf bytes.Buffer
	buf.WriteString("# gust master keys: the last line is current. Keep this file secret.\n")
	for id, key := range keys {
		if id != current {
			buf.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		}
	}
	buf.WriteString(base64.StdEncoding.EncodeToString(keys[current]) + "\n")
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing master key: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing master key: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing master key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing master key: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("writing master key: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("writing master key: sync directory: %w", err)
	}
	return nil
}

// Current returns the id and key that seal new values.
func (k *Keyring) Current() (string, []byte) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current, k.keys[k.current]
}

// Key returns the key with id.
func (k *Keyring) Key(id string) ([]byte, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.keys[id]
	return key, ok
}

// add makes a new current key and saves the keyring. The new key becomes
// current only once it is saved: a value sealed with a key that no file
// holds is lost at the next restart.
func (k *Keyring) add() (string, error) {
	if k.path == "" {
		return "", errors.New("the master key comes from GUST_MASTER_KEY: rotate it by setting a new value and re-setting the secrets")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("making master key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	id := keyID(key)
	keys := make(map[string][]byte, len(k.keys)+1)
	for kid, kk := range k.keys {
		keys[kid] = kk
	}
	keys[id] = key
	if err := saveKeys(k.path, keys, id); err != nil {
		return "", err
	}
	k.keys, k.current = keys, id
	return id, nil
}

// retire drops every key but the current one and saves the keyring. The
// keys are dropped only once the file without them is saved, so that what
// this process can open is what a restart could.
func (k *Keyring) retire() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := map[string][]byte{k.current: k.keys[k.current]}
	if k.path != "" {
		if err := saveKeys(k.path, keys, k.current); err != nil {
			return err
		}
	}
	k.keys = keys
	return nil
}
