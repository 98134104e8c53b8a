package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

func check(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got := Append([]byte("x"), s)
	if !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Fatalf("Append(%q) = %s, encoding/json writes %s", s, got[1:], want)
	}
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " backslash \\ slash /`, "ctl \x00\x01\x1f \b\f\n\r\t",
		"<html> & more", "\u2028 \u2029", "héllo wörld ✓", "bad \xff utf8 \xc3", "\x7f del", "🙂"} {
		check(t, s)
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "a\"b", "<&>", "\xff\xfe", "\u2028", "\x00\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}
