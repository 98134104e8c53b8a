# gust's runtime client for Lambda-style Python handlers. It speaks the AWS
# Lambda Runtime API at $AWS_LAMBDA_RUNTIME_API, standard library only.
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        trace = headers.get("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def error_shape(exc):
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


class Client:
    def __init__(self):
        host, _, port = API.rpartition(":")
        # No timeout: "next" blocks until gust has an event, however long.
        self.conn = http.client.HTTPConnection(host, int(port))

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, BASE + path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp, data

    def post_json(self, path, obj, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, json.dumps(obj).encode(), h)


def load_handler(spec):
    module_name, _, func_name = spec.rpartition(".")
    if not module_name or not func_name:
        raise ValueError("handler %r is not FILE.FUNCTION" % spec)
    module = importlib.import_module(module_name.replace("/", "."))
    fn = getattr(module, func_name, None)
    if fn is None:
        raise AttributeError("handler %r: module %r has no function %r" % (spec, module_name, func_name))
    if not callable(fn):
        raise TypeError("handler %r is not callable" % spec)
    return fn


# Imported ahead by a pre-warmed worker, so that handlers find them loaded:
# what Lambda handlers use most, and what is slow to import.
PREWARM_IMPORTS = (
    "base64", "collections", "dataclasses", "datetime", "decimal", "functools",
    "hashlib", "hmac", "logging", "random", "re", "typing", "urllib.parse",
    "urllib.request", "uuid", "zoneinfo",
)


def inheritable_clearer():
    """Returns a function that empties this thread's inheritable
    capabilities, the one set that becoming the function's user leaves:
    gust's helper passes a worker its CAP_SETUID and CAP_SETGID through
    it, with an empty bounding set. Lowering it takes no privilege. Made
    before specialization, so that ctypes loads while nothing waits; None
    without ctypes, and the set stays, inert under no_new_privs."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        capset = libc.capset
    except (ImportError, OSError, AttributeError):
        return None

    def clear():
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable of caps 0-31, then of 32-63
        if capset(header, data) != 0:
            raise OSError(ctypes.get_errno(), "capset: cannot empty the inheritable capabilities")
    return clear


def prewarm(client):
    """Waits, as a pre-warmed worker, until gust names the function this
    process becomes, then becomes it: its whole environment replaces the
    worker's, and it drops to the function's user (which clears the
    capabilities the worker kept for this) before any of its code runs."""
    for name in PREWARM_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    clear_inheritable = inheritable_clearer()
    resp, body = client.request("GET", "/gust/specialize")
    if resp.status != 200:
        print("runtime API: specialize answered %d" % resp.status, file=sys.stderr, flush=True)
        sys.exit(1)
    spec = json.loads(body)
    os.environ.clear()
    os.environ.update(spec["env"])
    time.tzset()
    uid = spec.get("uid", 0)
    if uid:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if clear_inheritable is not None:
            clear_inheritable()
    os.chdir(spec["dir"])
    importlib.invalidate_caches()


def main():
    client = Client()
    if os.environ.get("GUST_PREWARMED") == "1":
        prewarm(client)
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except Exception as exc:  # noqa: BLE001 - any import failure is an init error
        shape = error_shape(exc)
        print("init error: %s: %s" % (shape["errorType"], shape["errorMessage"]), file=sys.stderr, flush=True)
        client.post_json("/init/error", shape, {"Lambda-Runtime-Function-Error-Type": "Runtime." + shape["errorType"]})
        sys.exit(1)
    while True:
        resp, body = client.request("GET", "/invocation/next")
        if resp.status != 200:
            print("runtime API: next answered %d" % resp.status, file=sys.stderr, flush=True)
            sys.exit(1)
        ctx = Context(resp.headers)
        try:
            event = json.loads(body) if body else None
            result = handler(event, ctx)
            out = json.dumps(result).encode()
        except Exception as exc:  # noqa: BLE001 - the handler's failure is reported, not fatal
            shape = error_shape(exc)
            traceback.print_exception(exc, file=sys.stderr)
            sys.stderr.flush()
            client.post_json("/invocation/%s/error" % ctx.aws_request_id, shape,
                             {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
            continue
        sys.stdout.flush()
        client.request("POST", "/invocation/%s/response" % ctx.aws_request_id, out,
                       {"Content-Type": "application/json"})


if __name__ == "__main__":
    main()
