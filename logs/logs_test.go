package logs

import (
	"strings"
	"testing"
)

func TestSplitLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10)
	var lines []string
	splitLines([]byte("first\r\n\nsecond\n"+long), func(l string) { lines = append(lines, l) })
	if len(lines) != 3 || lines[0] != "first" || lines[1] != "second" {
		t.Fatalf("lines = %q", lines)
	}
	if !strings.HasSuffix(lines[2], TruncatedMarker) || len(lines[2]) != MaxLine+len(TruncatedMarker) {
		t.Fatalf("long line not cut with marker: len %d", len(lines[2]))
	}
}
