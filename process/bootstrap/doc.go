// Package bootstrap holds the programs that run Lambda-style Python and
// Node.js handlers on gust: each is a small Lambda runtime client, written in
// the interpreter's own language with its standard library only, that loads
// the handler named by _HANDLER from LAMBDA_TASK_ROOT and then loops on the
// Runtime API at AWS_LAMBDA_RUNTIME_API (next, response, error, init/error).
// Started as a pre-warmed worker (GUST_PREWARMED=1), each first loads what it
// can without a function, then asks gust's own gust/specialize endpoint which
// function to become, takes that function's environment in place of its own,
// becomes its user and directory, and only then loads the handler.
//
// The process driver writes them to disk and runs them on the machine's
// python3 and node. This package holds only the programs' text: it must not
// start processes or know about the driver.
package bootstrap

import _ "embed"

// Python is the runtime client for the python3 runtime (bootstrap.py).
//
//go:embed bootstrap.py
var Python []byte

// Node is the runtime client for the nodejs runtime (bootstrap.mjs). It is
// an ES module so that it can load a handler written either as CommonJS
// (index.js, index.cjs) or as an ES module (index.mjs) with import().
//
//go:embed bootstrap.mjs
var Node []byte
