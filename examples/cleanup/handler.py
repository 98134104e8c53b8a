"""Scheduled maintenance: delete the expired entries of a directory.

A cron trigger runs this every few minutes as an async invocation (a
CloudEvent of type dev.gust.cron; a tick fires once however many gust nodes
share one NATS, and is retried on failure like any async invocation).
An entry is a regular file directly in CLEANUP_DIR; it has expired when it
was last modified more than TTL_SECONDS ago. Subdirectories, symlinks and
anything else are left alone, as are files that vanish meanwhile (another
run got them).

Why this shape: a wasm function gets no file system or network, so a
cleanup in wasm could only decide what is expired, not delete it. The
process runtime runs an ordinary program, sandboxed (its own uid, a
private /tmp) but able to reach the directory it is given, so the task
deletes the entries itself. Grant the directory to the function's uid (or
make it group-writable), and keep it outside /tmp, /var/tmp and /dev/shm,
which the sandbox replaces with private ones.

The answer (kept in the invocation's status) and the log say what was
deleted.
"""
import json
import os
import stat
import time


def handler(event, context):
    root = os.environ.get("CLEANUP_DIR", "")
    if not root or not os.path.isabs(root):
        raise ValueError("CLEANUP_DIR must be an absolute directory path")
    ttl = float(os.environ.get("TTL_SECONDS", "86400"))
    dry_run = os.environ.get("DRY_RUN", "") == "1"
    now = time.time()
    deleted, kept, errors = [], 0, []
    with os.scandir(root) as entries:
        for e in sorted(entries, key=lambda e: e.name):
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime <= ttl:
                kept += 1
                continue
            if dry_run:
                deleted.append(e.name)
                continue
            try:
                os.unlink(e.path)
                deleted.append(e.name)
            except FileNotFoundError:
                pass
            except OSError as err:
                errors.append("%s: %s" % (e.name, err.strerror))
    tick = event.get("headers", {}).get("ce-time", "")
    print("cleanup of %s at %s: deleted %d, kept %d, errors %d%s" % (
        root, tick or "manual run", len(deleted), kept, len(errors), " (dry run)" if dry_run else ""))
    for name in deleted:
        print("  deleted", name)
    for err in errors:
        print("  error", err)
    return {
        "statusCode": 500 if errors else 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"dir": root, "ttlSeconds": ttl, "deleted": deleted,
                            "kept": kept, "errors": errors, "dryRun": dry_run}),
    }
