// Package kv is the key-value store of wasm functions that declare
// `kv: true`: one JetStream KV bucket per function, named gust_kv_NAME,
// created when a version that declares it is deployed (or loaded after a
// restart) and removed with the function (`gust rm`).
//
// Each bucket belongs to one function; a function reaches only its own,
// through the wasm driver's host functions (Store.Open hands the driver a
// Bucket bound to one name). Keys are 1 to 512 characters of letters,
// digits and - / _ = . (JetStream's key alphabet), neither starting nor
// ending with '.'; values are bytes. A bucket is bounded (1 GiB of keys
// and values, 1 MiB a value, by default; see New's options), so one
// function cannot fill the disk that every function's state shares; a
// write past a bound fails with ETOOLARGE. Listing by prefix reads a
// bounded number of keys and says when it left some out (Bucket.List).
//
// It must not run code or know about HTTP: the wasm driver exposes it to
// guests, cmd/gust and node wire it.
package kv
