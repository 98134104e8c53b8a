// Package routes guards a function's HTTP routes (the manifest's
// `routes:`): it matches a request to /fn/NAME/... against the live
// version's routes, authenticates it as the route demands (a gust token
// with invoke scope, an API key issued for the function, or a JSON Web
// Token), applies the route's per-caller rate limit, and validates the
// body against the route's JSON Schema before the function runs. The
// verified identity reaches the function as X-Gust-Auth-* headers, which
// the gateway strips from what clients send, so a function can trust them.
//
// It also keeps the API keys (hashed, in the JetStream KV bucket
// gust_api_keys) and serves their admin routes.
//
// The life of a request through a Router:
//
//  1. Admit, before the body is read: match the route (404 if none),
//     authenticate (401, 403), take a token from the caller's bucket (429).
//  2. The returned finish func, once the body is read: validate it against
//     the schema (400 listing the schema errors), then set the identity
//     headers on what the function will see.
//
// A version's routes are compiled once (schemas, path patterns) and cached
// by function and version number: versions are immutable. A schema also
// gets a fast check (fastschema.go) that passes the usual body in one walk
// of its bytes; whatever it cannot vouch for goes to the schema library,
// so verdicts and error messages are the library's either way.
//
// It must not invoke functions, nor decide anything for functions without
// routes: those behave as if this package did not exist.
package routes
