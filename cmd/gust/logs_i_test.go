package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/client"
)

func logLine(t *testing.T, inv, stream, msg string) string {
	t.Helper()
	b, err := json.Marshal(client.LogEntry{Time: testNow, Version: 2, Invocation: inv, Stream: stream, Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// A function's output is anyone's input: in the readable format its
// control characters are escaped, so it can neither drive the terminal
// nor forge a line; a line too long to hold is skipped, and the stream
// goes on.
func TestLogsEscapeAndSurviveLongLines(t *testing.T) {
	huge := logLine(t, "x", "stdout", strings.Repeat("y", maxLogLine))
	in := logLine(t, "abc", "stdout", "red \x1b[31mtext\x1b[0m\ttabbed") +
		logLine(t, "abc", "stderr", "one\nforged 2026 v1 line\rback\x07\x7f \u202eevil\u202c é \xff") +
		huge +
		logLine(t, "\x1b]0;title\x07", "stdout", "after the long line") +
		strings.TrimSuffix(logLine(t, "def", "stdout", "last, without a newline"), "\n")
	var out, errb bytes.Buffer
	if err := printLogs(&out, &errb, strings.NewReader(in), false); err != nil {
		t.Fatalf("printLogs: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5:\n%s", len(lines), out.String())
	}
	for i, want := range []string{
		`red \x1b[31mtext\x1b[0m` + "\ttabbed",
		`one\nforged 2026 v1 line\rback\x07\x7f \u202eevil\u202c é ` + "\ufffd",
		"(a log line of " + itoa(len(huge)) + " bytes was skipped: over 1048576)",
		`after the long line`,
		`last, without a newline`,
	} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("line %d = %q, want it to end %q", i+1, lines[i], want)
		}
	}
	if !strings.Contains(lines[3], `\x1b]0;ti`) {
		t.Errorf("invocation id not escaped: %q", lines[3])
	}
	if strings.ContainsAny(out.String(), "\x1b\r\x07\x7f\u202e") {
		t.Errorf("a control character reached the output: %q", out.String())
	}

	// --json keeps the server's lines, and says on stderr what it skipped.
	out.Reset()
	if err := printLogs(&out, &errb, strings.NewReader(in), true); err != nil {
		t.Fatalf("printLogs --json: %v", err)
	}
	if n := strings.Count(out.String(), "\n"); n != 4 || !strings.Contains(errb.String(), "skipped a log line of") {
		t.Fatalf("--json: %d lines, stderr %q", n, errb.String())
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// gust logs -f goes on past a line over the old 1 MiB limit.
func TestLogsFollowPastAHugeLine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/functions/hello/logs" || r.URL.Query().Get("follow") != "true" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write([]byte(logLine(t, "a", "stdout", "before")))
		w.Write([]byte(logLine(t, "a", "stdout", strings.Repeat("z", 3<<20))))
		w.Write([]byte(logLine(t, "a", "stdout", "after")))
	}))
	t.Cleanup(srv.Close)
	done := make(chan result, 1)
	go func() { done <- runCLI(t, srv.URL, "", "logs", "hello", "-f") }()
	select {
	case r := <-done:
		if r.err != nil || !strings.Contains(r.stdout, "before") || !strings.Contains(r.stdout, "after") || !strings.Contains(r.stdout, "was skipped") {
			t.Fatalf("logs -f: %v\n%s", r.err, r.stdout)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("logs -f did not end with its stream")
	}
}
