// Package wasm is gust's WebAssembly driver: it implements gust.Driver on
// wazero, in-process.
//
// # What it does
//
// Load compiles a module once (deploy calls it, so broken code fails the
// deploy) through a compilation cache that lives on disk, so a restarted
// server loads in tens of milliseconds instead of recompiling for a second.
// A module gets nothing from the host but WASI preview 1 with exactly the
// environment variables of its spec (no host environment, no sockets, real
// clocks and a real random source) and the capabilities its spec declares
// through gust's host module (see Capabilities): outbound HTTP to its
// allowedHosts, a key-value store of its own, and its files read-only at
// /files; without files it sees no file system at all. Imports from any
// other host module are refused at load.
//
// wazero sets the memory limit per runtime, so the driver keeps one runtime
// per distinct Spec.MemoryMB, all sharing one compilation cache, and all with
// close-on-context-done: the only way to stop a guest stuck in a loop. That
// safety has a price: wazero checks for termination at every loop header
// and watches each call's context from a goroutine, which makes guest code
// roughly two to three times slower than it runs unguarded.
//
// MemorySize reports an instance's linear memory, for accounting.
//
// # Two module shapes, told apart by their exports
//
// A reactor exports gust_malloc and gust_handle (Go with //go:wasmexport,
// built with -buildmode=c-shared; see the SDK). An instance is instantiated
// once without running _start, _initialize runs once, and the instance then
// serves call after call warm. Its stdout and stderr go to the log sink
// tagged with the invocation running at the time.
//
// A WAGI module is any WASI command (it exports _start), in any language. It
// gets a fresh instance per request: CGI variables and the request headers
// (as HTTP_*) in its environment, the body on stdin, and a CGI response on
// stdout (headers, a blank line, the body; "Status: 404 Not Found" sets the
// status, a Location header alone means 302). PATH_INFO is decoded and
// X_RAW_PATH_INFO is the path as the client escaped it, as in WAGI.
//
// # The reactor ABI, version 2
//
// Guest exports: _initialize() (from c-shared; optional for other
// toolchains), gust_malloc(size i32) i32, which returns a guest buffer of at
// least size bytes that the guest owns and keeps alive, and
// gust_handle(ptr i32, len i32) i64, which decodes the request the host wrote
// at ptr/len, runs the handler, and returns (respPtr<<32)|respLen of the
// encoded response, valid until the next call. A guest of ABI version 2
// also exports gust_handle_v2, the same with a request that carries the raw
// path: the host calls it when the module exports it (learnt at Load) and
// gust_handle otherwise, so guests built by older SDKs run as before (their
// requests carry no raw path), and a guest of version 2 exports both so it
// runs on an older host too. The buffer gust_malloc
// returned stays valid, and the host reuses it for every later request
// that fits, until the host calls gust_malloc again: a warm call is one
// guest call, not two.
//
// Encoding: every integer is a u32, little-endian; every string or byte
// string is a u32 length followed by its bytes.
//
//	request v1 = method path query header-count (name value)* body
//	request v2 = method path rawpath query header-count (name value)* body
//	response   = status header-count (name value)* body
//
// path is decoded; rawpath is gust.Request.RawPath (the path as the client
// escaped it, when that differs from the default escaping; else empty).
// query is raw, without '?'. A header with several values is several
// entries. The host adds X-Gust-Invocation-Id to the request's headers when
// the request has an id and does not carry that header already. The host
// encodes the request straight into the buffer gust_malloc returned, so a
// warm call copies the request once and allocates only for the response.
//
// # Capabilities: the host module "gust"
//
// Every host function but result_read returns an i64, (code<<32)|len: code
// 0 is success, 1 not found, 2 denied (the spec does not grant it), 3
// invalid arguments, 4 failed (network, store), 5 a limit hit; len is the
// size of a payload the host keeps for the guest (the result on success,
// an error message otherwise) until the guest's next host call. The guest
// copies it with result_read(ptr i32, cap i32) i32, which writes at most
// cap bytes at ptr and returns how many it wrote (-1 if that memory is not
// the guest's). Pointers and lengths are
// i32; the encoding is the ABI's (u32 lengths, little-endian).
//
//	http_request(req_ptr, req_len) i64
//	    req    = method url header-count (name value)* body
//	    result = status header-count (name value)* body
//	kv_get(key_ptr, key_len) i64              result = the value; code 1 if unset
//	kv_set(key_ptr, key_len, val_ptr, val_len) i64
//	kv_delete(key_ptr, key_len) i64           a missing key is not an error
//	kv_list(prefix_ptr, prefix_len) i64       result = count (key)*, sorted, at most 1000
//
// Outbound HTTP goes only to hosts in Spec.AllowedHosts (exact names, or
// "*.example.com" for any subdomain of example.com), by name: an IP
// literal (or a number a resolver would take as one) is refused whatever
// the list says, and so is a redirect to a host not on the list; the host
// follows at most 5 redirects itself. Each invocation may send
// Config.MaxRequests requests (default 20); a response body over
// Config.MaxResponseBytes (default 8 MiB) is refused; the invocation's
// deadline bounds every request. Connections use Config.Dial (tests map
// names to 127.0.0.1 there) and never a proxy from the host's environment.
// Without Config.Dial, a connection to a loopback, link-local (cloud
// metadata), unspecified or multicast address is refused whatever name led
// there, checked on the address dialed so DNS rebinding gains nothing;
// private networks stay reachable.
// A Host header is dropped: the URL names the host.
//
// The key-value store (Spec.KV) is Config.KV's, opened (so created) at
// Load, which deploy calls: one JetStream bucket per function (package
// kv). Values are at most Config.MaxValueBytes (default 1 MiB).
//
// Files (Spec.Files) are a tar archive stored beside the code and named by
// its sha256; Load fetches it with Config.Archive and mounts it read-only
// at gust.FilesMount (/files) from memory: regular files and directories
// only, every write fails.
//
// A refused call answers code 2 or 5 with a message for the function, and
// is also written to the function's log on the "gust" stream (with the
// invocation id) and to the driver's log. Host functions work only while
// the instance handles a request: called during initialization they answer
// code 2. A module may import them whatever its spec says; what it was not
// granted is refused at the call.
//
// # Snapshots
//
// A reactor's instances start from a pre-initialized snapshot by default
// (Spec.Snapshot false, or Config.NoSnapshots, turns it off): the first
// instance of a version runs _initialize, the host captures its linear
// memory and mutable globals into a file under Config.SnapshotDir (default
// CacheDir; a directory per boot and build, which New prunes, see
// prune.go), and later instances are restored from it without running
// initialization. Their memory is a private copy-on-write mapping of the
// file on Linux (a copy elsewhere), so an idle instance costs the pages it
// wrote. The module is rewritten for this at Load (no data section, its
// mutable globals exported; see snapshotModule); snapshot.go narrates the
// whole life.
//
// A restore is cheap because three things are done once instead of per
// instance. A module with a snapshot keeps one instance shell ready,
// instantiated in the background with its memory empty (shell.go), so a
// restore puts into it only what comes from the snapshot. The memory of a
// closed restored instance is kept (a few per module) with the list of
// pages it wrote, and the next restore copies the snapshot's bytes over
// just those, instead of mapping and faulting pages anew. And the pages
// the first call of an instance touches are learnt once per snapshot and
// populated up front when a memory must be mapped anew (snapmem_linux.go
// says why page faults, not copies, are what costs).
//
// A snapshot is keyed by the code's digest, the wazero version, the file
// format, the instance's arguments, environment and memory limit, and the
// host's boot id; it carries a sha256 of itself, and one that does not
// match is removed and rebuilt, never used.
//
// What differs per restored instance: crypto/rand (WASI random_get per
// call), the Go runtime's internal generator behind math/rand,
// math/rand/v2's top-level functions and map iteration order (the host
// locates its state with gust_runtime_rand and overwrites it with fresh
// random bytes), and whatever the function's sdk.OnRestore hooks reset.
// What does not: anything else init computed (an instance id drawn in init
// without an OnRestore hook is shared by every restored instance), the
// runtime's hash seed and its cheap scheduling generator, and the
// monotonic clock's origin (time.Since a time taken in init includes the
// time the snapshot sat on disk). If the generator's state cannot be found
// (another Go version's layout), the snapshot is still used and a log line
// says math/rand's top-level sequence is shared.
//
// Not snapshotted, with a log line saying why, instances starting
// normally: WAGI modules (a fresh instance per request anyway), modules
// without the SDK's gust_restored export, modules with a start function,
// passive data segments or a data-count section, imported or several
// memories, or mutable globals of reference or vector type, and instances
// whose init left goroutines running (the SDK's gust_snapshot_check
// vetoes: a goroutine would be cloned mid-flight into every instance).
// Pending timers are not detected; they fire in every restored instance.
//
// # Failures
//
// A deadline is ETIMEOUT, hitting the memory limit is EOOM, a trap, panic or
// non-zero exit is EFUNCTION; after any of them the instance is unusable and
// the pool discards it. Bad code at Load is EINVALID with a message that
// names the problem.
//
// This package must not know about pools, HTTP servers or the registry: it
// turns code and a request into a response, nothing else. BuildGo, which
// `gust build` runs, lives here because it is the other half of the reactor
// contract.
package wasm
