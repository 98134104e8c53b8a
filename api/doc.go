// Package api is gust's admin API: JSON over HTTP under /v1, behind a
// bearer token. It deploys functions (validating and compiling the code
// before anything is stored), lists functions and versions, rolls back,
// sets aliases, deletes functions, and reports node status. The CLI is a
// client of exactly this API.
//
// It must not run functions or pick HTTP statuses for errors by itself:
// errors go through httperr, and code reaches a driver only through the
// Deployer interface.
package api
