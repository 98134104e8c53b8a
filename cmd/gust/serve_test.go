package main

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"8MB": 8 << 20, "8mb": 8 << 20, "8M": 8 << 20, "8MiB": 8 << 20, "1024KB": 1 << 20,
		"64k": 64 << 10, "2097152": 2 << 20, " 3 MB ": 3 << 20, "10B": 10,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "1.5MB", "-1MB", "8GB", "8 XB", "99999999999999999MB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	s := sizeFlag(8 << 20)
	if s.String() != "8MB" {
		t.Errorf("default shows as %q", s.String())
	}
}

// gust serve refuses a --max-payload out of range, and any with --nats,
// before it starts anything.
func TestServeMaxPayloadRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--max-payload", "512KB"}, "want 1MB"},
		{[]string{"--max-payload", "65MB"}, "64MB"},
		{[]string{"--max-payload", "lots"}, `invalid size "lots"`},
		{[]string{"--max-payload", "8MB", "--nats", "nats://127.0.0.1:18399"}, "with --nats, set max_payload in the configuration of those NATS servers"},
	} {
		dir := t.TempDir()
		r := runCLI(t, "http://127.0.0.1:18398", "", append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:18397"}, tc.args...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.says) {
			t.Errorf("serve %v: %v, want an error saying %q", tc.args, r.err, tc.says)
		}
	}
}
