// Package abi is the guest half of gust's reactor ABI, version 1 (see the
// sdk package doc for the wire format): the request and response types, their
// encoding, and — in the wasip1 build only — the gust_malloc and gust_handle
// exports that the host calls.
//
// Both public faces of the SDK (sdk with net/http, and sdk/lean without it)
// sit on this package, so the ABI is written once. It must not import
// net/http: that would undo the point of the lean API.
package abi
