// gust's runtime client for Lambda-style Node.js handlers. It speaks the AWS
// Lambda Runtime API at $AWS_LAMBDA_RUNTIME_API with node:http only.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [host, port] = (() => {
  const api = process.env.AWS_LAMBDA_RUNTIME_API;
  const i = api.lastIndexOf(":");
  return [api.slice(0, i), Number(api.slice(i + 1))];
})();
const BASE = "/2018-06-01/runtime";
// One kept-alive connection, and no timeout: "next" blocks until gust has
// an event, however long that takes. noDelay, and each request written in
// one piece (end(body)): a body sent apart from its headers would wait out
// the server's delayed ACK (Nagle's algorithm), some 40 ms.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1, noDelay: true });

function request(method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method, path: BASE + p, agent, headers },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function postJSON(p, obj, headers = {}) {
  return request("POST", p, JSON.stringify(obj), { "Content-Type": "application/json", ...headers });
}

function errorShape(err) {
  if (err instanceof Error) {
    const stack = typeof err.stack === "string" ? err.stack.split("\n").slice(1).map((l) => l.trim()) : [];
    return { errorType: err.name || "Error", errorMessage: err.message, stackTrace: stack };
  }
  return { errorType: typeof err === "string" ? "string" : "Error", errorMessage: String(err), stackTrace: [] };
}

async function loadHandler(spec) {
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const dot = spec.lastIndexOf(".");
  if (dot <= 0 || dot === spec.length - 1) throw new Error(`handler ${JSON.stringify(spec)} is not FILE.FUNCTION`);
  const file = spec.slice(0, dot);
  const name = spec.slice(dot + 1);
  let found;
  for (const ext of [".js", ".mjs", ".cjs"]) {
    const p = path.resolve(root, file + ext);
    if (fs.existsSync(p)) {
      found = p;
      break;
    }
  }
  if (!found) throw new Error(`handler ${JSON.stringify(spec)}: no ${file}.js, ${file}.mjs or ${file}.cjs in ${root}`);
  const mod = await import(pathToFileURL(found).href);
  let fn = mod[name];
  if (fn === undefined && mod.default && typeof mod.default === "object") fn = mod.default[name];
  if (typeof fn !== "function") throw new Error(`handler ${JSON.stringify(spec)}: ${path.basename(found)} exports no function ${name}`);
  return fn;
}

function makeContext(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"] || 0);
  const trace = headers["lambda-runtime-trace-id"];
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  return {
    awsRequestId: headers["lambda-runtime-aws-request-id"] || "",
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"] || "",
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME || "",
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION || "$LATEST",
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || "",
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME || "",
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME || "",
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
}

// invoke runs a handler written either way: async (returns a promise) or
// callback-style (takes a third argument and calls it). Whichever answers
// first wins, as on Lambda.
function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err, value) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err);
      else resolve(value);
    };
    context.done = done;
    context.succeed = (v) => done(null, v);
    context.fail = (e) => done(e ?? new Error("failed"));
    try {
      const r = handler(event, context, done);
      if (r && typeof r.then === "function") r.then((v) => done(null, v), (e) => done(e ?? new Error("rejected")));
      else if (handler.length < 3) done(null, r);
    } catch (e) {
      done(e);
    }
  });
}

// prewarm waits, as a pre-warmed worker, until gust names the function this
// process becomes, then becomes it: its whole environment replaces the
// worker's, and it drops to the function's user (which clears the
// capabilities the worker kept for this) before any of its code loads.
// Node has no capset: the inheritable set, through which gust's helper
// passed the two, keeps them, inert under no_new_privs with an empty
// bounding set (see process/doc.go).
async function prewarm() {
  const r = await request("GET", "/gust/specialize");
  if (r.status !== 200) {
    console.error(`runtime API: specialize answered ${r.status}`);
    process.exit(1);
  }
  const spec = JSON.parse(r.body.toString("utf8"));
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, spec.env);
  if (spec.uid) {
    process.setgroups([]);
    process.setgid(spec.uid);
    process.setuid(spec.uid);
  }
  process.chdir(spec.dir);
}

async function main() {
  if (process.env.GUST_PREWARMED === "1") await prewarm();
  let handler;
  try {
    handler = await loadHandler(process.env._HANDLER || "");
  } catch (err) {
    const shape = errorShape(err);
    console.error(`init error: ${shape.errorType}: ${shape.errorMessage}`);
    await postJSON("/init/error", shape, { "Lambda-Runtime-Function-Error-Type": `Runtime.${shape.errorType}` });
    process.exit(1);
  }
  for (;;) {
    const next = await request("GET", "/invocation/next");
    if (next.status !== 200) {
      console.error(`runtime API: next answered ${next.status}`);
      process.exit(1);
    }
    const context = makeContext(next.headers);
    const id = context.awsRequestId;
    let out;
    try {
      const event = next.body.length ? JSON.parse(next.body.toString("utf8")) : null;
      // A handler whose promise never settles must run into its timeout,
      // as on Lambda, not let node exit on an empty event loop.
      const keepAlive = setInterval(() => {}, 1 << 30);
      try {
        const result = await invoke(handler, event, context);
        // A function or a Symbol has no JSON form: stringify gives
        // undefined, which would post an empty body.
        out = JSON.stringify(result === undefined ? null : result) ?? "null";
      } finally {
        clearInterval(keepAlive);
      }
    } catch (err) {
      const shape = errorShape(err);
      console.error(`${shape.errorType}: ${shape.errorMessage}\n${shape.stackTrace.join("\n")}`);
      await postJSON(`/invocation/${id}/error`, shape, { "Lambda-Runtime-Function-Error-Type": "Unhandled" });
      continue;
    }
    await request("POST", `/invocation/${id}/response`, out, { "Content-Type": "application/json" });
  }
}

main().catch((err) => {
  console.error("runtime client failed:", err);
  process.exit(1);
});
