package gust

import (
	"errors"
	"fmt"
)

// Application error codes. They travel as the "code" field of the JSON error
// shape; the gateway and admin API map them to HTTP statuses in exactly one
// place (see the httperr package), and the CLI maps them back.
const (
	ENOTFOUND     = "not_found"      // no such function, version, alias or invocation
	EINVALID      = "invalid"        // bad input: name, spec, manifest, code
	ECONFLICT     = "conflict"       // a concurrent change won; retry
	ETOOLARGE     = "too_large"      // request body over the function's limit
	ETHROTTLED    = "throttled"      // at max concurrency after the queue timeout
	ECAPACITY     = "no_capacity"    // node memory budget exhausted, nothing reapable
	ETIMEOUT      = "timeout"        // the function ran past its timeout
	EOOM          = "out_of_memory"  // the function exceeded its memory limit
	EFUNCTION     = "function_error" // the function trapped, panicked or exited
	EUNAUTHORIZED = "unauthorized"   // missing or bad token
	EFORBIDDEN    = "forbidden"      // token lacks the scope
	EUNAVAILABLE  = "unavailable"    // shutting down or not ready
	EINTERNAL     = "internal"       // a bug or an infrastructure failure
)

// Error is an error with an application code and a message meant for the
// user. Wrap lower-level errors in Err so logs keep the cause while the
// message stays clean.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with code and message that wraps err.
func WrapError(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err: the Message of the
// first *Error in its chain, or a generic text for internal errors so that
// infrastructure details do not leak to callers.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Message != "" {
			return e.Message
		}
		if e.Err != nil {
			return e.Err.Error()
		}
	}
	return "internal error"
}
