package logs

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
	"github.com/gustfaas/gust/registry"
)

// The log of a function that does not exist is 404, followed or not, so
// that a typo does not look like a quiet function; a function that exists
// and wrote nothing has an empty log, and a deleted function's lines stay
// readable while they are stored.
func TestHandlerUnknownFunction(t *testing.T) {
	js := testJS(t)
	reg, err := registry.Open(ctx(t), js, registry.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	for _, name := range []string{"quiet", "gone"} {
		if _, err := reg.Deploy(ctx(t), name, gust.Spec{}.WithDefaults(), "reactor", []byte("\x00asm code of "+name)); err != nil {
			t.Fatal(err)
		}
	}
	s := testStore(t, js, func(c *StoreConfig) { c.Functions = reg })
	s.FunctionLog("gone", 1, "inv1", "stdout", []byte("last words\n"))
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := reg.Delete(ctx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	bare := testStore(t, js, nil)

	serve := func(s *Store) *httptest.Server {
		mux := http.NewServeMux()
		mux.Handle("GET /v1/functions/{name}/logs", s.Handler())
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	srv, bareSrv := serve(s), serve(bare)
	get := func(srv *httptest.Server, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		// A follower's body never ends: its first line is enough.
		var b strings.Builder
		buf := make([]byte, 1)
		for !strings.HasSuffix(b.String(), "\n") {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
			b.WriteByte(buf[0])
		}
		return resp.StatusCode, b.String()
	}

	for _, path := range []string{"/v1/functions/nosuch/logs", "/v1/functions/nosuch/logs?follow=true"} {
		status, body := get(srv, path)
		var e httperr.Body
		if status != http.StatusNotFound || json.Unmarshal([]byte(body), &e) != nil || e.Code != gust.ENOTFOUND || !strings.Contains(e.Error, `"nosuch"`) {
			t.Fatalf("GET %s = %d %s, want 404 not_found", path, status, body)
		}
	}
	if status, body := get(srv, "/v1/functions/quiet/logs"); status != http.StatusOK || body != "" {
		t.Fatalf("quiet function: %d %q, want 200 and nothing", status, body)
	}
	status, body := get(srv, "/v1/functions/gone/logs")
	var e Entry
	if status != http.StatusOK || json.Unmarshal([]byte(body), &e) != nil || e.Message != "last words" {
		t.Fatalf("deleted function: %d %q, want its stored line", status, body)
	}
	// Without Functions a store cannot tell: an empty log, as before.
	if status, body := get(bareSrv, "/v1/functions/nosuch/logs"); status != http.StatusOK || body != "" {
		t.Fatalf("without Functions: %d %q", status, body)
	}
}
