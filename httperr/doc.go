// Package httperr is the one place where gust's application error codes
// become HTTP statuses and the JSON error shape {"error": "...", "code":
// "..."} that DESIGN.md promises. The gateway and the admin API both answer
// errors through Write; nothing else picks an error status.
//
// It must not decide what an error means: callers choose the code (see
// gust.Errorf), this package only renders it.
package httperr
