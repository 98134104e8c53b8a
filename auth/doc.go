// Package auth guards the admin API with bearer tokens. On first start it
// creates the admin token, writes it to DATA/admin.token with mode 0600,
// and afterwards accepts exactly that token, compared in constant time
// through its SHA-256 so the plaintext is not kept in memory longer than
// needed.
//
// It must not decide what a route does; it only answers 401 before the
// route runs.
package auth
