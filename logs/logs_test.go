package logs

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestSlogSink(t *testing.T) {
	var buf bytes.Buffer
	s := SlogSink{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	long := strings.Repeat("x", MaxLine+10)
	s.FunctionLog("hello", 3, "abc", "stderr", []byte("first\r\n\nsecond\n"+long))
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3: %s", len(lines), buf.String())
	}
	if lines[0]["msg"] != "first" || lines[1]["msg"] != "second" {
		t.Fatalf("lines = %v", lines)
	}
	if lines[0]["function"] != "hello" || lines[0]["version"] != float64(3) || lines[0]["invocation"] != "abc" || lines[0]["stream"] != "stderr" {
		t.Fatalf("attributes = %v", lines[0])
	}
	msg := lines[2]["msg"].(string)
	if !strings.HasSuffix(msg, TruncatedMarker) || len(msg) != MaxLine+len(TruncatedMarker) {
		t.Fatalf("long line not cut with marker: len %d", len(msg))
	}
}
