package auth

import "testing"

func TestCredential(t *testing.T) {
	id, secret, hash, err := NewCredential("gk_")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := CredentialID("gk_", secret); !ok || got != id || len(id) != 16 {
		t.Fatalf("CredentialID = %q %v, want %q", got, ok, id)
	}
	if !CredentialMatches(secret, hash) {
		t.Fatal("the credential does not match its own hash")
	}
	if CredentialMatches(secret+"x", hash) || CredentialMatches(secret, "zz") {
		t.Fatal("a wrong secret or a malformed hash matched")
	}
	for _, bad := range []string{"", "gk_", "gust_" + id + "_x", "gk_noseparator"} {
		if _, ok := CredentialID("gk_", bad); ok {
			t.Errorf("CredentialID accepted %q", bad)
		}
	}
	_, other, _, _ := NewCredential("gk_")
	if other == secret {
		t.Fatal("two credentials are the same")
	}
}
