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
// unpacked, and a compression ratio above Limits.MaxRatio (a zip bomb),
// stopping each file's write at the first byte past either budget.
// Extraction runs outside the driver's lock, one per digest at a time.
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
// stackTrace} written to its log and carried up in the error as a
// *FunctionError, whose ErrorFields an error's JSON body adds beside
// "error" and "code"; an init error fails the cold start. One
// event is in flight per instance. A reported error leaves the process
// running, as on Lambda: the error wraps gust.ErrInstanceHealthy, so the
// pool keeps the instance warm, inside its memory budget. So does a
// response gust cannot map (not JSON, a statusCode of null): EFUNCTION
// naming the problem. An event whose /next connection broke as the
// runtime took it is offered again to the runtime's next /next.
//
// # Pre-warmed workers (python3, nodejs)
//
// While a version of a managed runtime is loaded, the driver keeps
// Config.Prewarm workers of that runtime ready: sandboxes as below, each
// in a cgroup of its own held to 128 MB, with the interpreter started and
// gust's runtime client loaded (python with the usual stdlib imported),
// but no code mounted and nothing of any function in its environment. A
// cold start takes one and specializes it: the cgroup gets the function's
// memory limit, gust mounts the code read-only at the task root (a
// detached mount, attached by the helper, which then becomes the
// function's user), and answers the runtime client's request to
// gust/specialize on its Runtime API with the function's whole
// environment, user and directory. The client replaces its environment,
// becomes the function's user (setgroups, setresgid, setresuid) and only
// then imports the handler. Until that moment a worker's interpreter runs
// as root in its namespaces with CAP_SETUID and CAP_SETGID only and
// no_new_privs; becoming the user clears both, so the function runs with
// no capabilities, as a cold-started one. Its bounding set is empty from
// the start (an interpreter could not empty it once it is the function's
// user): the helper passes the two through the inheritable set, which
// python's client then empties too; node's cannot (no capset), so a node
// function's inheritable set keeps the two, which no exec can make
// effective under no_new_privs and an empty bounding set. /proc/PID/environ of a pooled
// instance shows the worker's environment at exec, not the function's;
// the process is also not dumpable. A worker serves one instance of one
// version and is never returned; the pool refills in the background at a
// low CPU priority (nice 10, restored at specialization), one start at a
// time per runtime, bounded by Config.PrewarmMemoryMB, and is emptied when
// the runtime's last version is unloaded and on Close. A worker that
// cannot be specialized (a memory limit below what the interpreter
// already uses) is discarded and the instance starts cold. Functions
// with Egress start cold too (a worker's network namespace is fixed).
//
// # Sandbox (Linux)
//
// New probes what the machine allows, logs what it cannot apply, and
// reports it in Isolation. When gust is root, each instance starts through
// the sandbox helper: the running binary re-executed (/proc/self/exe
// __sandbox; see RunSandboxHelperIfRequested) in fresh mount, pid, ipc,
// uts and network namespaces. The helper, gated until gust has put it in
// its cgroup, first prepares what does not depend on the function: it
// makes /tmp a private tmpfs of Config.TmpMB (also over /var/tmp,
// /dev/shm and /run/lock) with an empty task root, mounts a /proc
// showing the instance's processes only, brings up loopback, listens for
// the Runtime API bridge, and empties its capability bounding set but for
// CAP_SETUID and CAP_SETGID, with no_new_privs. New keeps
// Config.SpareSandboxes helpers prepared that far, each in a cgroup of
// its own (joining one takes milliseconds on v1), at a lower CPU priority
// (nice 10) until taken, and refills them after the cold start that took
// one is over, so as not to slow it; a spare still being prepared when a
// cold start begins is stopped (SIGSTOP) until no cold start is under way,
// because even at nice 10 it would take page faults, wake-ups and TLB
// flushes from the start on this kind of machine. A cold start then only
// restores the priority, sets the cgroup's memory limit and hands the
// helper its function: the helper bind-mounts the code read-only at
// /tmp/task (LAMBDA_TASK_ROOT), and the runtime clients at /tmp/runtime if the
// function needs them, drops the last two capabilities from the bounding
// set and starts the function as an unprivileged uid of its function's
// own (Config.UIDBase on) with no capabilities. A spare serves one
// instance and is never reused. The helper then drops its own privileges
// and stays as the instance's init: it reaps orphans and exits with the
// function's status.
// The environment is the spec's Env, PATH, HOME, TMPDIR, LANG and TZ
// defaults, and the protocol's variables; nothing of gust's own. A cgroup
// (v1 or v2, nested in gust's own) bounds memory to Spec.MemoryMB and
// tasks to Config.PidsMax, and tells a kill for memory (EOOM) from a crash
// (EFUNCTION); without a cgroup RLIMIT_AS bounds memory instead. Only fds
// 0-2 reach the function. The process group, the pid namespace and the
// cgroup are killed on timeout (ETIMEOUT), on any failure, and on Close.
//
// Instances die with gust, even with a gust killed by SIGKILL that had no
// time to stop them: the helper has a parent-death signal (re-armed after
// it becomes the function's user, since changing users clears it), and
// exits when gust's end of its control socket closes; as the pid
// namespace's init it takes the instance's every process with it. The
// driver's cgroups are named for their owner (gust-PID-START, START the
// process's start time in clock ticks after boot), so that New can tell
// the cgroups of a gust that is gone from those of a live one (another
// node on this machine): it kills whatever is left in the former, removes
// them and logs what it reaped, before it hands out any user id again.
//
// # Network
//
// An instance's network namespace holds only a loopback: it cannot reach
// gust's gateway, NATS, or anything else. gust still reaches it through
// the helper: a SOCK_SEQPACKET socket pair between them carries the
// connections' sockets as file descriptors. An http function listens on
// 127.0.0.1:8080 inside; for each connection gust wants, the helper
// connects there and hands gust the connected socket. A lambda function
// finds the Runtime API at 127.0.0.1:9001 inside, where the helper
// listens and hands gust each accepted socket. Either way gust then talks
// to the function directly and the helper copies nothing. Nothing
// outside the namespace can connect to either port.
//
// An http function is ready once the helper connects to $PORT; that
// connection carries the first request. The helper does not poll for it:
// it starts the function under a seccomp filter whose only effect is to
// report each listen(2) call to the helper, which lets it through
// unchanged and connects right after (a listen the filter cannot see is
// still found by a poll every 5 ms; without seccomp the helper polls
// every 50 µs to 1 ms). The filter denies nothing, but the function
// cannot install a seccomp filter with a user-notification listener of
// its own (EBUSY). A lambda function is ready at its first request for
// an event. A spec with Egress set keeps the
// instance in the host's network namespace instead (any address,
// 127.0.0.1 included, is then reachable); gust then talks to it over TCP
// on 127.0.0.1 as without namespaces. There any local process could
// connect too, so gust asks the kernel (sock_diag, else /proc/net/tcp)
// who owns the other end of each connection: the Runtime API admits only
// sockets of the function's user (403 to others), and $PORT is proxied to
// only when a socket of that user listens there.
//
// This package must not know about pools, HTTP routing or the registry: it
// turns code and a request into a response.
package process
