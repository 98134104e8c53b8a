// Package logs keeps what functions write to stdout and stderr, and gust's
// own events about their invocations (cold start, timeout, throttle ...),
// in a JetStream stream with a retention limit: one subject per function
// and invocation, so a query for one invocation is a subject filter. It
// serves them as NDJSON, as a backlog or followed live. A line longer than
// MaxLine is cut with an explicit marker, never silently.
//
// It must not block a function: writes go through a bounded buffer and are
// published asynchronously; a full buffer drops lines and says so.
package logs
