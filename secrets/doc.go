// Package secrets is gust's managed secret store. Values are encrypted at
// rest with AES-256-GCM under a master key, each ciphertext bound to its
// secret's name and tagged with the id of the key that sealed it, and kept
// in a JetStream KV bucket so every node of a cluster sees the same
// secrets. The master key comes from a key file (--master-key-file; made
// with mode 0600 in the data dir on first start) or GUST_MASTER_KEY; the
// key file is a keyring so the key can rotate: RotateKey adds a new key,
// re-encrypts every secret under it, and drops the old one.
//
// A function gets a secret only if its spec lists it, as an environment
// variable (webhook triggers and JWT routes name secrets too). A secret
// that a version an alias points to needs is not removed without force:
// that version would answer 503 on every call (see Remove). This package must never log, return in an error, or put in an
// API response a secret's value: the only way out of it is Values, which
// the invoker calls to start instances.
package secrets
