// Package process is gust's driver for functions that are processes: any
// executable (runtime "process"), and Lambda-style Python and Node.js
// handlers (runtimes "python3" and "nodejs"). One Driver serves the three
// runtimes; Drivers returns the gust.Driver of each.
//
// # Code
//
// Code is a zip or a tar.gz archive, told apart by its first bytes. Load
// unpacks it once per content digest under WorkDir/code, through an
// os.Root, refusing with EINVALID (naming the entry) absolute paths, '..',
// symlinks that could lead out, device files, pipes, hard links, duplicate
// entries, more than Limits.MaxFiles entries, more than Limits.MaxBytes
// unpacked, and a compression ratio above Limits.MaxRatio (a zip bomb).
// It then checks that the archive holds what will run: an executable
// bootstrap at its root (or the spec's Cmd) for process, the handler's
// FILE.py for python3, FILE.js, .mjs or .cjs for nodejs. Nothing starts at
// Load.
//
// # Protocols
//
// An http function serves HTTP on 127.0.0.1:$PORT; it is ready once it
// accepts a connection, and each Invoke is proxied to it over a transport
// of the instance's own, concurrently when PerInstanceConcurrency > 1.
//
// A lambda function (and every python3 and nodejs function, through the
// runtime clients in package bootstrap) is served the AWS Lambda Runtime
// API at $AWS_LAMBDA_RUNTIME_API, on a port of the instance's own. It is
// ready when it first asks for an event. A request reaches it as an API
// Gateway HTTP API payload 2.0 event, and its proxy response (statusCode,
// headers, multiValueHeaders, cookies, body, isBase64Encoded) becomes the
// HTTP response; any other JSON value is a 200 application/json body. An
// error it reports is EFUNCTION with Lambda's {errorMessage, errorType,
// stackTrace} written to its log; an init error fails the cold start. One
// event is in flight per instance.
//
// # Sandbox (Linux)
//
// New probes what the machine allows, logs what it cannot apply, and
// reports it in Isolation. When gust is root, each instance starts through
// the sandbox helper: the running binary re-executed (/proc/self/exe
// __sandbox; see RunSandboxHelperIfRequested) in fresh mount, pid, ipc,
// uts and network namespaces. New keeps Config.SpareSandboxes helpers
// started ahead, so a cold start only creates the cgroup, mounts and starts
// the function. The helper, gated until gust has put it in the instance's
// cgroup, makes /tmp a private tmpfs of Config.TmpMB (also over /var/tmp,
// /dev/shm and /run/lock), bind-mounts the code read-only at /tmp/task
// (LAMBDA_TASK_ROOT) and the runtime clients at /tmp/runtime, mounts a
// /proc showing the instance's processes only, brings up loopback, and
// starts the function as an unprivileged uid of its function's own
// (Config.UIDBase on) with an empty capability bounding set and
// no_new_privs. It then drops its own privileges and stays as the
// instance's init: it reaps orphans and exits with the function's status.
// The environment is the spec's Env, PATH, HOME, TMPDIR, LANG and TZ
// defaults, and the protocol's variables; nothing of gust's own. A cgroup
// (v1 or v2, nested in gust's own) bounds memory to Spec.MemoryMB and
// tasks to Config.PidsMax, and tells a kill for memory (EOOM) from a crash
// (EFUNCTION); without a cgroup RLIMIT_AS bounds memory instead. Only fds
// 0-2 reach the function. The process group, the pid namespace and the
// cgroup are killed on timeout (ETIMEOUT), on any failure, and on Close.
//
// # Network
//
// An instance's network namespace holds only a loopback: it cannot reach
// gust's gateway, NATS, or anything else. gust still reaches it through
// the helper: a SOCK_SEQPACKET socket pair between them carries, as file
// descriptors, one end of a fresh socket pair per connection. An http
// function listens on 127.0.0.1:8080 inside; each connection gust opens
// is handed to the helper, which connects it there. A lambda function
// finds the Runtime API at 127.0.0.1:9001 inside, where the helper
// listens and hands each connection to gust. Nothing outside the
// namespace can connect to either. A spec with Egress set keeps the
// instance in the host's network namespace instead (any address,
// 127.0.0.1 included, is then reachable); gust then talks to it over TCP
// on 127.0.0.1 as without namespaces.
//
// This package must not know about pools, HTTP routing or the registry: it
// turns code and a request into a response.
package process
