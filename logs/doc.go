// Package logs receives what functions write to stdout and stderr and
// passes it on, line by line and tagged with function, version and
// invocation id, to gust's structured log. A line longer than MaxLine is
// cut with an explicit marker, never silently.
//
// It must not block a function: a sink call costs a log write at most.
package logs
