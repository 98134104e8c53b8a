package secrets

import (
	"os"
	"path/filepath"
	"testing"
)

// breakDir makes dir impossible to write the keyring into: a file stands
// where the directory was.
func breakDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A rotation whose keyring cannot be saved leaves the current key as it
// was: a secret sealed afterwards must open after a restart.
func TestKeyringAddFailsBeforeSwap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	k, _, err := LoadKeyring(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := k.Current()
	breakDir(t, dir)
	if _, err := k.add(); err == nil {
		t.Fatal("add succeeded with no directory to save into")
	}
	if after, _ := k.Current(); after != before {
		t.Errorf("failed rotation left current key %s, which no file holds; was %s", after, before)
	}
}

// A successful rotation is on disk before the new key seals anything, and
// a failed retire keeps the old keys this process can open with.
func TestKeyringAddSavedRetireFailsBeforeDrop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	k, _, err := LoadKeyring(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := k.Current()
	id, err := k.add()
	if err != nil {
		t.Fatal(err)
	}
	k2, _, err := LoadKeyring(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := k2.Current(); cur != id {
		t.Fatalf("reloaded current key %s, want %s", cur, id)
	}
	if _, ok := k2.Key(old); !ok {
		t.Fatal("reloaded keyring lost the old key before retire")
	}
	if st, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temporary key file left behind: %v", err)
	}

	breakDir(t, dir)
	if err := k.retire(); err == nil {
		t.Fatal("retire succeeded with no directory to save into")
	}
	if _, ok := k.Key(old); !ok {
		t.Error("failed retire dropped the old key")
	}
}
