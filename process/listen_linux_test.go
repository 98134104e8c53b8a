package process

import "testing"

// The listen notification needs Linux 5.5; the release string decides.
func TestParseRelease(t *testing.T) {
	for _, c := range []struct {
		r           string
		maj, mnr    int
		ok, at5dot5 bool
	}{
		{"6.18.44-fc-v782", 6, 18, true, true},
		{"5.4.0-150-generic", 5, 4, true, false},
		{"5.5.0", 5, 5, true, true},
		{"5.10", 5, 10, true, true},
		{"4.19.0-27-amd64", 4, 19, true, false},
		{"garbage", 0, 0, false, false},
	} {
		maj, mnr, ok := parseRelease(c.r)
		if maj != c.maj || mnr != c.mnr || ok != c.ok {
			t.Errorf("parseRelease(%q) = %d, %d, %v; want %d, %d, %v", c.r, maj, mnr, ok, c.maj, c.mnr, c.ok)
		}
		if at := ok && (maj > 5 || maj == 5 && mnr >= 5); at != c.at5dot5 {
			t.Errorf("%q at least 5.5: %v", c.r, at)
		}
	}
	if !kernelAtLeast(3, 0) {
		t.Error("the running kernel is not even 3.0")
	}
}
