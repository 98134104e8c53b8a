// Package auth decides who a request to the admin API is and what it may
// do. On first start it creates the bootstrap admin token and writes it to
// DATA/admin.token with mode 0600; other tokens carry a scope (admin,
// deploy, read, invoke), optionally a list of functions and an expiry, and
// are kept in a JetStream KV bucket as SHA-256 hashes only, compared in
// constant time. Require answers 401 for a missing, bad, expired or revoked
// token and 403 for one whose scope or functions do not cover the route.
//
// It must not decide what a route does; it only admits or refuses.
package auth
