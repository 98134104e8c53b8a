// Package gateway is gust's public HTTP front door for invocations:
// `ANY /fn/NAME[@REF][/...]` runs a function synchronously with the HTTP
// request as its event and answers with the function's status, headers and
// body. REF is an alias (`@live`, `@canary`) or a version number (`@3`).
//
// It is a chain of single-purpose steps: tag the invocation id, route and
// resolve the function, bound the body, convert the request, invoke, write
// the response. Every answer, success or error, carries
// X-Gust-Invocation-Id; errors are the JSON shape rendered by httperr.
//
// It must not import a driver or the registry implementation: it reaches
// functions only through the Invoker interface.
package gateway
