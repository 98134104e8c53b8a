// Package abi is the guest half of gust's reactor ABI, version 1 (see the
// sdk package doc for the wire format): the request and response types, their
// encoding, and — in the wasip1 build only — the gust_malloc and gust_handle
// exports that the host calls.
//
// Serve reuses one Request, its header map and a pool of responses from
// call to call, and copies a request's strings in one allocation: in a Go
// guest under wazero's WithCloseOnContextDone, which gust needs for
// timeouts, every jump between basic blocks of Go code (Go's wasm backend
// makes each one a branch to a loop header) exits to the host for a
// termination check, so allocations, map operations and byte loops are
// tens of times dearer than natively.
//
// Both public faces of the SDK (sdk with net/http, and sdk/lean without it)
// sit on this package, so the ABI is written once. It must not import
// net/http: that would undo the point of the lean API.
package abi
