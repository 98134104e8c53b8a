// Package client is the Go client of gust's admin API (JSON under /v1 with a
// bearer token) and of the invocation route /fn/NAME, plus the gust.yaml
// manifest that `gust deploy -f` reads. The CLI is built on it; tests and
// other programs may use it too.
//
// Errors the server answers in its JSON shape come back as *gust.Error with
// the server's code, so callers test codes with gust.ErrorCode exactly as
// they would inside the server. A server that cannot be reached is
// gust.EUNAVAILABLE.
//
// It must not import any server-side package (registry, drivers, gateway,
// api): it speaks HTTP only, so it stays a small dependency for anyone
// scripting gust.
package client
