// Package logs keeps what functions write to stdout and stderr, and gust's
// own events about their invocations (cold start, timeout, throttle ...),
// in a JetStream stream with a retention limit, and serves them as NDJSON,
// as a backlog or followed live. A line longer than MaxLine is cut with an
// explicit marker, never silently.
//
// Lines are stored in batches: a message holds the lines written between
// two flushes (FlushInterval, 100 ms by default) by one invocation, or by
// several sparse invocations of one function. Subjects name the function
// and, for a batch of one invocation, the invocation, so reading one
// function or one invocation stays a subject filter; reading splits the
// batches back into lines, in the order they were written. A batch is a
// compact binary record (encode.go): the function named once, then per
// line its time, version, stream, invocation id and message.
//
// Given the registry (StoreConfig.Functions), the endpoint answers 404 for
// a function that does not exist and has no lines stored, so that a typo
// does not look like a quiet function; the lines of a deleted function stay
// readable while the stream keeps them.
//
// It must not block a function: a write is an append to a bounded buffer,
// published asynchronously; a full buffer drops lines and says so.
package logs
