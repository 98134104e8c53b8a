// Package host is the guest half of gust's host functions (import module
// "gust"; the ABI is in the wasm package's doc): outbound HTTP and the
// function's key-value store. Package sdk wraps it as an http.RoundTripper
// and a KV type; package lean re-exports the KV type.
//
// Outside a wasip1 build every call fails with ErrUnavailable, so code
// that uses it still compiles and tests on the developer's machine.
//
// It must not import net/http: package lean uses it.
package host
