package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNodes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"nodes":[`+
			`{"id":"a","address":"http://10.0.0.1:8080","version":"0.2.0","inFlight":3,"instances":5,"memoryUsedMB":320,"memoryBudgetMB":2048,"started":"2025-06-01T10:00:00Z","lastSeen":"2025-06-01T12:00:00Z","self":true},`+
			`{"id":"b","address":"http://10.0.0.2:8080","version":"0.2.0","inFlight":0,"instances":0,"memoryUsedMB":0,"memoryBudgetMB":0,"started":"2025-06-01T11:30:00Z","lastSeen":"2025-06-01T11:59:59Z"}]}`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	defer srv.Close()

	r := runCLI(t, srv.URL, "", "nodes")
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	for i := range got {
		got[i] = strings.Join(strings.Fields(got[i]), " ")
	}
	want := []string{
		"ID ADDRESS IN FLIGHT INSTANCES MEMORY MB VERSION STARTED SEEN",
		"a * http://10.0.0.1:8080 3 5 320/2048 0.2.0 2h ago 0s ago",
		"b http://10.0.0.2:8080 0 0 0/- 0.2.0 30m ago 1s ago",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output:\n%s\nwant:\n%s", r.stdout, strings.Join(want, "\n"))
	}

	r = runCLI(t, srv.URL, "", "nodes", "-o", "json")
	var nodes []struct {
		ID   string `json:"id"`
		Self bool   `json:"self"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil || len(nodes) != 2 || !nodes[0].Self {
		t.Fatalf("nodes -o json: %v\n%s", err, r.stdout)
	}
	if r = runCLI(t, srv.URL, "", "nodes", "-o", "yaml"); r.err == nil {
		t.Fatal("nodes -o yaml: want an error")
	}
}
