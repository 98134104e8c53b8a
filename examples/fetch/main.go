// Command fetch is a caching proxy in front of one HTTP API, and a tour of
// what a wasm function may use when its manifest says so:
//
//   - outbound HTTP through sdk.Do, only to the manifest's
//     allowedHosts (here the host of $UPSTREAM);
//   - its own key-value store (kv: true), where it caches responses and
//     counts hits and misses;
//   - a read-only directory (files: static), mounted at /files.
//
// GET /            serves /files/index.html
// GET /api/PATH    answers $UPSTREAM/PATH, from the cache after the first time
// GET /stats       the cache's hits, misses and cached paths
// DELETE /api/PATH drops PATH from the cache
//
// Build: gust build . -o fetch.wasm
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/gustfaas/gust/sdk"
)

var store sdk.KV

func init() { sdk.HandleFunc(serve) }

func serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/":
		page, err := os.ReadFile("/files/index.html")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	case r.URL.Path == "/stats":
		stats(w)
	case strings.HasPrefix(r.URL.Path, "/api/") && r.Method == http.MethodDelete:
		if err := store.Delete(cacheKey(r.URL.Path)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(r.URL.Path, "/api/") && r.Method == http.MethodGet:
		proxy(w, r)
	default:
		http.NotFound(w, r)
	}
}

// cacheKey is the store's key of an API path: "cache/PATH".
func cacheKey(path string) string { return "cache/" + strings.TrimPrefix(path, "/api/") }

func proxy(w http.ResponseWriter, r *http.Request) {
	key := cacheKey(r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	if body, err := store.Get(key); err == nil {
		count("hits")
		w.Header().Set("X-Cache", "hit")
		w.Write(body)
		return
	} else if !errors.Is(err, sdk.ErrNotFound) {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req, err := http.NewRequest(http.MethodGet, os.Getenv("UPSTREAM")+strings.TrimPrefix(r.URL.Path, "/api"), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// sdk.Do, not sdk.Client: an http.Client would double the module's
	// size (see sdk.Client).
	resp, err := sdk.Do(req)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, sdk.ErrDenied) {
			status = http.StatusForbidden
		}
		http.Error(w, err.Error(), status)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	count("misses")
	if resp.StatusCode == http.StatusOK {
		if err := store.Set(key, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("X-Cache", "miss")
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// count adds one to a counter. Instances run at once, so two may count
// the same value; a lost increment is acceptable for statistics.
func count(name string) {
	n := 0
	if b, err := store.Get("stats." + name); err == nil {
		n, _ = strconv.Atoi(string(b))
	}
	_ = store.Set("stats."+name, []byte(strconv.Itoa(n+1)))
}

func stats(w http.ResponseWriter) {
	get := func(name string) string {
		b, err := store.Get("stats." + name)
		if err != nil {
			return "0"
		}
		return string(b)
	}
	keys, err := store.List("cache/")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = strconv.Quote(strings.TrimPrefix(k, "cache/"))
	}
	fmt.Fprintf(w, `{"hits":%s,"misses":%s,"cached":[%s]}`+"\n", get("hits"), get("misses"), strings.Join(quoted, ","))
}

func main() {}
