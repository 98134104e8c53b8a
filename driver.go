package gust

import (
	"context"
	"errors"
	"io"
)

// Driver runs code of one runtime. The life of code in a driver:
//
//  1. Load validates and compiles an artifact (at deploy, so a broken
//     module fails the deploy and not the first call; and again after a
//     restart, from the driver's on-disk cache). Bad code is EINVALID.
//  2. Module.NewInstance starts an instance: a cold start.
//  3. Instance.Invoke runs one request. The pool never calls Invoke on one
//     instance from two goroutines at once unless the driver's
//     Capabilities allow it.
//  4. An Invoke that returns an error has left the instance unusable
//     (timeout, out of memory, trap): the pool closes it and never reuses it,
//     unless the error wraps ErrInstanceHealthy. A function that answers 500
//     is not an error; it is a Response.
//  5. Instance.Close frees an instance; Module.Close frees the compiled code
//     once no instance is left.
type Driver interface {
	// Runtime is the Spec.Runtime value this driver serves.
	Runtime() string
	// Load validates and compiles code for version v. The returned module
	// is ready to start instances. Errors: EINVALID for bad code.
	Load(ctx context.Context, v *Version, code []byte, logs LogSink) (Module, error)
}

// ErrInstanceHealthy is wrapped by an Invoke error that failed the call
// but left the instance fit to serve the next one: a handler that raised
// and whose runtime reported it (as on Lambda, the process lives on). The
// pool keeps such an instance warm instead of closing it. The error's code
// still says what happened to the call, for example
//
//	gust.WrapError(gust.EFUNCTION, gust.ErrInstanceHealthy, "function error: %s", msg)
var ErrInstanceHealthy = errors.New("the instance is still healthy")

// Module is loaded code of one version, ready to start instances.
type Module interface {
	// Shape is the driver's name for the module's form ("reactor", "wagi").
	Shape() string
	// NewInstance starts an instance (a cold start). Errors: EOOM if the
	// instance cannot be created within the memory limit, EFUNCTION if its
	// initialization fails.
	NewInstance(ctx context.Context) (Instance, error)
	// Close frees the module. Instances must be closed first.
	Close(ctx context.Context) error
}

// Instance runs requests. See Driver for its life.
type Instance interface {
	// Invoke runs req. ctx carries the function's timeout. Errors:
	// ETIMEOUT, EOOM, EFUNCTION; after any error the instance is discarded,
	// unless the error wraps ErrInstanceHealthy.
	Invoke(ctx context.Context, req *Request) (*Response, error)
	// Close frees the instance.
	Close(ctx context.Context) error
}

// LogSink receives what a function writes to stdout and stderr, tagged
// with the invocation it belongs to ("" while an instance initializes).
type LogSink interface {
	FunctionLog(function string, version int, invocationID, stream string, p []byte)
}

// LogWriter adapts a LogSink to an io.Writer for one stream of one
// invocation. Drivers use it to hand guests a stdout or stderr.
type LogWriter struct {
	Sink         LogSink
	Function     string
	Version      int
	InvocationID string
	Stream       string
}

func (w *LogWriter) Write(p []byte) (int, error) {
	if w.Sink != nil {
		w.Sink.FunctionLog(w.Function, w.Version, w.InvocationID, w.Stream, p)
	}
	return len(p), nil
}

var _ io.Writer = (*LogWriter)(nil)
