// Command sleep is a benchmark function: it waits ?ms=N milliseconds
// (default 50, at most 10000) and answers "slept N ms". It stands in for a
// function that waits on I/O, so that a burst of requests needs many
// instances at once (bench/run targets 4 and 5).
//
// It uses the lean SDK, so its cold start is the SDK's floor, not
// net/http's.
//
// Build: gust build bench/sleep -o bench/sleep/sleep.wasm
package main

import (
	"strconv"
	"time"

	"github.com/gustfaas/gust/sdk/lean"
)

// maxSleep bounds one call so a typo in a query cannot hold an instance for
// the function's whole timeout.
const maxSleep = 10 * time.Second

func init() {
	lean.HandleFunc(func(r *lean.Request) *lean.Response {
		ms := 50
		if v := r.QueryValue("ms"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return lean.Text(400, "ms must be a non-negative integer\n")
			}
			ms = n
		}
		d := min(time.Duration(ms)*time.Millisecond, maxSleep)
		time.Sleep(d)
		return lean.Text(200, "slept "+strconv.Itoa(int(d/time.Millisecond))+" ms\n")
	})
}

func main() {}
