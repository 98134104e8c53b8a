// Package abi is the guest half of gust's reactor ABI, versions 1 and 2
// (see the sdk package doc for the wire format): the request and response
// types, their encoding, and — in the wasip1 build only — the gust_malloc,
// gust_handle (version 1) and gust_handle_v2 exports that the host calls.
//
// Serve reuses one Request, its header map and a pool of responses from
// call to call, and copies a request's strings in one allocation: Go
// compiled to WebAssembly is several times slower than natively, most of
// all at what allocation, map operations and write barriers do (every
// function entry and every jump back to a loop header, which Go's wasm
// backend makes of each of its own loops, also counts down gust's
// termination check), so a heap allocation costs ~0.25 µs and a map
// operation on a string key about as much.
//
// Both public faces of the SDK (sdk with net/http, and sdk/lean without it)
// sit on this package, so the ABI is written once. It must not import
// net/http: that would undo the point of the lean API.
package abi
