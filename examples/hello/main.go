// Command hello is the smallest gust function in Go: it answers
// "Hello, NAME!" for ?name=NAME (default "world").
//
// It also reports which instance served the request (X-Instance-Id, random
// per instance) and how many calls that instance has served
// (X-Instance-Calls), which shows warm reuse: state in package variables
// survives between requests on one instance and is never shared between
// instances. GET /env answers the environment the function was given.
//
// Build: gust build . -o hello.wasm
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"

	"github.com/gustfaas/gust/sdk"
)

var (
	instanceID string
	calls      int
)

// newInstanceID names this instance. It runs at init and again after a
// restore from a memory snapshot, so instances started from one snapshot
// still get ids of their own.
func newInstanceID() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	instanceID = hex.EncodeToString(b[:])
}

func init() {
	newInstanceID()
	sdk.OnRestore(newInstanceID)
	sdk.HandleFunc(hello)
}

func hello(w http.ResponseWriter, r *http.Request) {
	calls++
	w.Header().Set("X-Instance-Id", instanceID)
	w.Header().Set("X-Instance-Calls", strconv.Itoa(calls))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.URL.Path == "/env" {
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			fmt.Fprintln(w, kv)
		}
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	fmt.Fprintf(w, "Hello, %s!\n", name)
}

func main() {}
