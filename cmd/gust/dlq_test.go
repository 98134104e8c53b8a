package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// asyncAPI answers the async admin routes with canned documents and records
// what it was sent. The real routes are tested in package async.
func asyncAPI(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	mux := http.NewServeMux()
	dead := map[string]any{"deadLetters": []map[string]any{{
		"id": "abc123", "function": "hello", "trigger": "async", "method": "POST", "path": "/x",
		"error": "function panicked:\nboom", "code": "function_error", "attempts": 3,
		"acceptedAt": testNow.Add(-2 * time.Hour), "deadAt": testNow.Add(-90 * time.Minute), "seq": 7,
	}}}
	mux.HandleFunc("GET /v1/functions/{name}/dlq", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "hello" {
			writeJSON(w, 200, map[string]any{"deadLetters": []any{}})
			return
		}
		writeJSON(w, 200, dead)
	})
	mux.HandleFunc("POST /v1/functions/{name}/dlq/redrive", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, "redrive "+string(b))
		mu.Unlock()
		var in struct{ IDs []string }
		_ = json.Unmarshal(b, &in)
		res := map[string]any{"redriven": []string{"abc123"}}
		for _, id := range in.IDs {
			if id != "abc123" {
				res["missing"] = []string{id}
			}
		}
		writeJSON(w, 200, res)
	})
	mux.HandleFunc("DELETE /v1/functions/{name}/dlq", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"purged": 4})
	})
	status := map[string]any{
		"id": "abc123", "function": "hello", "version": 3, "trigger": "async", "status": "succeeded", "attempts": 2,
		"acceptedAt": testNow.Add(-time.Minute), "startedAt": testNow.Add(-50 * time.Second), "finishedAt": testNow.Add(-49 * time.Second),
		"response": map[string]any{"status": 201, "body": "made it", "encoding": "text", "size": 7},
	}
	syncStatus := map[string]any{
		"id": "sync42", "kind": "sync", "function": "hello", "version": 2, "trigger": "http", "status": "failed", "attempts": 1,
		"error": "function error: panic: boom", "acceptedAt": testNow.Add(-30 * time.Second), "startedAt": testNow.Add(-30 * time.Second),
		"finishedAt": testNow.Add(-30 * time.Second), "durationMs": 12.5, "cold": true,
	}
	// A throttled call: no instance ran it, so the server sends no cold.
	throttled := map[string]any{
		"id": "sync43", "kind": "sync", "function": "hello", "version": 2, "trigger": "http", "status": "failed", "attempts": 1,
		"error": "throttled", "code": gust.ETHROTTLED, "acceptedAt": testNow.Add(-30 * time.Second), "startedAt": testNow.Add(-30 * time.Second),
		"finishedAt": testNow.Add(-30 * time.Second), "durationMs": 1000,
	}
	mux.HandleFunc("GET /v1/invocations/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "sync42" {
			writeJSON(w, 200, syncStatus)
			return
		}
		if r.PathValue("id") == "sync43" {
			writeJSON(w, 200, throttled)
			return
		}
		if r.PathValue("id") != "abc123" {
			writeJSON(w, 404, map[string]string{"error": "no invocation", "code": gust.ENOTFOUND})
			return
		}
		writeJSON(w, 200, status)
	})
	mux.HandleFunc("DELETE /v1/invocations/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 409, map[string]string{"error": "invocation abc123 is succeeded: only a queued invocation can be canceled", "code": gust.ECONFLICT})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeJSON(w, 401, map[string]string{"error": "invalid token", "code": gust.EUNAUTHORIZED})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestDLQCommands(t *testing.T) {
	srv, seen := asyncAPI(t)
	r := runCLI(t, srv.URL, "", "dlq", "ls", "hello")
	if r.err != nil || !strings.Contains(r.stdout, "abc123") || !strings.Contains(r.stdout, "POST /x") ||
		!strings.Contains(r.stdout, "function panicked: boom") || !strings.Contains(r.stdout, "2h ago") {
		t.Fatalf("dlq ls: %v\n%s", r.err, r.stdout)
	}
	if r := runCLI(t, srv.URL, "", "dlq", "ls", "other"); r.err != nil || !strings.Contains(r.stdout, "no dead letters") {
		t.Fatalf("empty dlq ls: %v %s", r.err, r.stdout)
	}
	if r := runCLI(t, srv.URL, "", "dlq", "ls", "hello", "-o", "json"); r.err != nil || !strings.Contains(r.stdout, `"deadLetters"`) {
		t.Fatalf("dlq ls json: %v %s", r.err, r.stdout)
	}
	if r := runCLI(t, srv.URL, "", "dlq", "redrive", "hello"); r.err != nil || !strings.Contains(r.stdout, "redrove 1 dead letter of hello") {
		t.Fatalf("redrive: %v %s", r.err, r.stdout)
	}
	if r := runCLI(t, srv.URL, "", "dlq", "redrive", "hello", "abc123", "zzz"); r.err == nil || !strings.Contains(r.err.Error(), "zzz") {
		t.Fatalf("redrive of a missing id: %v %s", r.err, r.stdout)
	}
	if got := seen(); len(got) != 2 || got[0] != "redrive {}" || got[1] != `redrive {"ids":["abc123","zzz"]}` {
		t.Fatalf("sent %q", got)
	}
	if r := runCLI(t, srv.URL, "", "dlq", "purge", "hello"); r.err != nil || !strings.Contains(r.stdout, "purged 4 dead letters of hello") {
		t.Fatalf("purge: %v %s", r.err, r.stdout)
	}
}

func TestInvocationCommand(t *testing.T) {
	srv, _ := asyncAPI(t)
	r := runCLI(t, srv.URL, "", "invocation", "abc123")
	for _, want := range []string{"succeeded", "attempts:", "2", "response:", "201", "made it", "1m ago"} {
		if r.err != nil || !strings.Contains(r.stdout, want) {
			t.Fatalf("invocation: missing %q: %v\n%s", want, r.err, r.stdout)
		}
	}
	if r := runCLI(t, srv.URL, "", "invocation", "nope"); gust.ErrorCode(r.err) != gust.ENOTFOUND {
		t.Fatalf("unknown: %v", r.err)
	}
	if r := runCLI(t, srv.URL, "", "invocation", "abc123", "--cancel"); gust.ErrorCode(r.err) != gust.ECONFLICT {
		t.Fatalf("cancel: %v", r.err)
	}
	if r := runCLI(t, srv.URL, "", "invocation", "abc123", "-o", "json"); r.err != nil || !strings.Contains(r.stdout, `"status": "succeeded"`) {
		t.Fatalf("json: %v %s", r.err, r.stdout)
	}
}

// A sync invocation's status says so, with its duration, cold start and
// error, and no attempts or accept time.
func TestInvocationCommandSync(t *testing.T) {
	srv, _ := asyncAPI(t)
	r := runCLI(t, srv.URL, "", "invocation", "sync42")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"kind:", "sync", "failed", "function error: panic: boom", "duration:", "12.5ms", "start:", "cold", "30s ago"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("sync invocation: missing %q\n%s", want, r.stdout)
		}
	}
	for _, not := range []string{"attempts:", "accepted:"} {
		if strings.Contains(r.stdout, not) {
			t.Fatalf("sync invocation shows %q\n%s", not, r.stdout)
		}
	}
}

// A sync call no instance ran (throttled) started neither warm nor cold:
// its lookup says "start: not run"; it used to say "start: warm".
func TestInvocationCommandSyncNotRun(t *testing.T) {
	srv, _ := asyncAPI(t)
	r := runCLI(t, srv.URL, "", "invocation", "sync43")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !regexp.MustCompile(`(?m)^start:\s+not run$`).MatchString(r.stdout) || strings.Contains(r.stdout, "warm") {
		t.Fatalf("throttled sync invocation:\n%s", r.stdout)
	}
}
