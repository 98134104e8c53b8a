// Command gust wires gust's packages into one binary. `gust serve` (in
// serve.go) starts a node; the other verbs (deploy, ls, versions, rollback,
// rm, alias, invoke, status, usage, build) are thin commands over package
// client, one file per verb group, that print tables for people and raw
// JSON with -o json for scripts.
//
// Client verbs must not reach into server packages: everything they know
// about a node comes over its HTTP API, so they work the same against a
// local node and a remote one.
package main
