// gust console: a single page over the admin API (/v1) and the gateway
// (/fn). Plain modern JavaScript, no build step, no dependencies. Every
// DOM node is built with el(); data from the server is only ever set as
// text, never parsed as HTML.

// The admin token lives in this variable only, never in sessionStorage or
// localStorage: functions are served from this same origin (/fn/NAME), so
// a page any function returns runs as this origin and could read the
// browser's storage for it. Memory dies with the page: a reload asks again.
let authToken = "";
// Consoles before this one kept the token in sessionStorage: forget it.
try { sessionStorage.removeItem("gust.token"); } catch { /* storage disabled */ }
const main = document.getElementById("main");
let cleanup = () => {};

// ---------- DOM helpers ----------

function el(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const node = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.setAttribute("class", v);
    else if (k in node && !svg) node[k] = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

const nf = new Intl.NumberFormat();
const fmtInt = (n) => nf.format(n ?? 0);
const fmtNum = (n, digits = 2) =>
  new Intl.NumberFormat(undefined, { maximumFractionDigits: digits }).format(n ?? 0);

function fmtMs(ms) {
  if (!ms) return "0 ms";
  if (ms < 1) return `${fmtNum(ms * 1000, 0)} µs`;
  if (ms < 1000) return `${fmtNum(ms, ms < 10 ? 2 : 1)} ms`;
  return `${fmtNum(ms / 1000, 2)} s`;
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${fmtNum(n / 1024, 1)} KiB`;
  return `${fmtNum(n / (1 << 20), 1)} MiB`;
}

function fmtTime(t) {
  return new Date(t).toLocaleTimeString(undefined, { hour12: false });
}

function fmtAgo(t) {
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(t).toLocaleDateString();
}

function fmtCost(c) {
  c ??= 0;
  // Small sums keep their first digits rather than round to $0.00.
  const small = c > 0 && c < 0.01;
  return new Intl.NumberFormat(undefined, small
    ? { style: "currency", currency: "USD", maximumSignificantDigits: 3 }
    : { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(c);
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });

// ---------- API ----------

class APIError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const token = () => authToken;

async function api(path, opts = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      ...opts,
      headers: { Accept: "application/json", Authorization: `Bearer ${token()}`, ...(opts.headers || {}) },
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new APIError("Cannot reach the gust server. Is it running?", "unavailable", 0);
  }
  if (resp.status === 401) {
    signOut("Your token is no longer accepted. Sign in again.");
    throw new APIError("unauthorized", "unauthorized", 401);
  }
  if (!resp.ok) throw await errorOf(resp);
  if (opts.raw) return resp;
  return resp.json();
}

async function errorOf(resp) {
  let msg = `HTTP ${resp.status}`;
  let code = "";
  try {
    const body = await resp.json();
    if (body.error) msg = body.error;
    code = body.code || "";
  } catch { /* not the JSON error shape */ }
  return new APIError(msg, code, resp.status);
}

const enc = encodeURIComponent;

// ---------- sign in ----------

function signOut(message) {
  authToken = "";
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("node-info").textContent = "";
  renderSignIn(message);
}

function renderSignIn(message) {
  cleanup();
  cleanup = () => {};
  const err = el("p", { class: "notice error", id: "signin-error", role: "alert", hidden: !message }, message || "");
  const input = el("input", {
    type: "password", id: "token", name: "token", autocomplete: "current-password",
    placeholder: "paste the admin token", required: true,
  });
  const button = el("button", { type: "submit", id: "signin" }, "Sign in");
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      err.hidden = true;
      const tok = input.value.trim();
      try {
        const resp = await fetch("/v1/status", { headers: { Authorization: `Bearer ${tok}`, Accept: "application/json" } });
        if (resp.status === 401 || resp.status === 403) {
          throw new Error("That token was not accepted. Use the admin token that gust serve wrote to DATA/admin.token.");
        }
        if (!resp.ok) throw new Error((await errorOf(resp)).message);
        authToken = tok;
        if (!location.hash || location.hash === "#/") history.replaceState(null, "", "#/functions");
        start();
      } catch (e) {
        err.textContent = e instanceof TypeError ? "Cannot reach the gust server. Is it running?" : e.message;
        err.hidden = false;
        input.select();
      } finally {
        button.disabled = false;
      }
    },
  },
  el("label", { htmlFor: "token" }, "Admin token"), input, button);
  show(el("div", { class: "signin" },
    el("div", { class: "card" },
      el("h1", {}, "Sign in to gust"),
      el("p", { class: "muted", id: "token-note" }, "The token is kept in this page's memory only and sent with every request: " +
        "reloading the page asks for it again. It is not stored in the browser because functions are served " +
        "from this same address (/fn/…), and a page a function serves could read what the console stored."),
      err, form)));
  input.focus();
}

// ---------- router ----------

async function start() {
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  try {
    const st = await api("/v1/status");
    document.getElementById("node-info").textContent =
      `gust ${st.version} · memory ${fmtInt(st.memoryUsedMB)} / ${fmtInt(st.memoryBudgetMB)} MB`;
  } catch (e) {
    if (e.status === 401) return;
  }
  route();
}

function route() {
  if (!token()) return renderSignIn();
  cleanup();
  cleanup = () => {};
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.nav === (parts[0] || "functions"));
  }
  const ctl = new AbortController();
  cleanup = () => ctl.abort();
  if (parts[0] === "functions" && parts[1]) return functionPage(parts[1], ctl.signal);
  if (parts[0] === "usage") return usagePage(ctl.signal);
  return functionsPage(ctl.signal);
}

// every runs fn now and then every ms until signal aborts; a failing run
// shows its error in errBox and the loop goes on.
async function every(ms, signal, fn, errBox) {
  while (!signal.aborted) {
    try {
      await fn();
      if (errBox) errBox.hidden = true;
    } catch (e) {
      if (signal.aborted || e.name === "AbortError" || e.status === 401) return;
      if (errBox) { errBox.textContent = e.message; errBox.hidden = false; }
    }
    await sleep(ms, signal);
  }
}

// ---------- functions list ----------

function aliasText(fn) {
  const out = [];
  for (const a of Object.values(fn.aliases || {}).sort((x, y) => x.name.localeCompare(y.name))) {
    const t = a.targets.map((t) => (a.targets.length > 1 ? `v${t.version} ${t.weight}%` : `v${t.version}`)).join(" + ");
    out.push(`${a.name} → ${t}`);
  }
  return out;
}

function triggerText(t) {
  if (t.cron) return `cron ${t.cron}${t.timezone ? ` (${t.timezone})` : ""}`;
  if (t.subject) return `subject ${t.subject}`;
  if (t.stream) return `stream ${t.stream}${t.filter ? ` (${t.filter})` : ""}`;
  if (t.webhook) return `webhook ${t.webhook.path}${t.webhook.scheme ? ` (${t.webhook.scheme})` : ""}`;
  return "?";
}

async function functionsPage(signal) {
  const err = el("p", { class: "notice error", hidden: true });
  const body = el("div", { class: "table-wrap" }, el("p", { class: "empty" }, "Loading…"));
  show(
    el("div", { class: "page-head" }, el("h1", {}, "Functions"), el("span", { class: "muted small" }, "live on this node, refreshed every 5 seconds")),
    err,
    el("div", { class: "card" }, body),
  );
  const specs = new Map(); // "name@version" -> spec; versions are immutable
  await every(5000, signal, async () => {
    const [{ functions }, stats] = await Promise.all([
      api("/v1/functions", { signal }),
      api("/v1/stats?window=1m", { signal }).catch(() => ({ functions: [] })),
    ]);
    await Promise.all(functions.map(async (fn) => {
      const key = `${fn.name}@${fn.live}`;
      if (!specs.has(key) && fn.live > 0) {
        const v = await api(`/v1/functions/${enc(fn.name)}/versions/${fn.live}`, { signal });
        specs.set(key, v);
      }
    }));
    const live = new Map(stats.functions.map((s) => [s.function, s]));
    if (functions.length === 0) {
      body.replaceChildren(el("div", { class: "empty" },
        el("p", {}, "No functions yet."),
        el("p", {}, "Deploy one with ", el("code", {}, "gust deploy hello --code hello.wasm"), ".")));
      return;
    }
    body.replaceChildren(el("table", { id: "functions" },
      el("thead", {}, el("tr", {},
        el("th", {}, "Name"), el("th", {}, "Aliases"), el("th", { class: "num" }, "Versions"),
        el("th", {}, "Runtime"), el("th", {}, "Limits"), el("th", {}, "Triggers"),
        el("th", { class: "num" }, "req/s (1m)"), el("th", { class: "num" }, "p99"), el("th", {}, "Updated"))),
      el("tbody", {}, functions.map((fn) => {
        const v = specs.get(`${fn.name}@${fn.live}`);
        const s = v?.spec || {};
        const st = live.get(fn.name);
        return el("tr", {},
          el("td", {}, el("a", { href: `#/functions/${enc(fn.name)}` }, el("b", {}, fn.name))),
          el("td", {}, el("div", { class: "chips" }, aliasText(fn).map((a) => el("span", { class: a.startsWith("live ") ? "badge accent" : "badge" }, a)))),
          el("td", { class: "num" }, fmtInt(fn.latestVersion)),
          el("td", {}, s.runtime || "", v?.shape ? el("span", { class: "muted small" }, ` (${v.shape})`) : ""),
          el("td", { class: "small" }, s.runtime ? `${s.memory} MB · ${s.timeout} · ≤ ${s.maxConcurrency}` : ""),
          el("td", { class: "small" }, (s.triggers || []).map(triggerText).join(", ") || el("span", { class: "muted" }, "http")),
          el("td", { class: "num" }, st ? fmtNum(st.rps, 2) : "0"),
          el("td", { class: "num" }, st ? fmtMs(st.p99ms) : "–"),
          el("td", { class: "muted small" }, fmtAgo(fn.updatedAt)),
        );
      }))));
  }, err);
}

// ---------- function page ----------

async function functionPage(name, signal) {
  let fn;
  try {
    fn = await api(`/v1/functions/${enc(name)}`, { signal });
  } catch (e) {
    if (e.status === 401 || e.name === "AbortError") return;
    show(el("div", { class: "crumbs" }, el("a", { href: "#/functions" }, "Functions")),
      el("p", { class: "notice error" }, e.code === "not_found" ? `There is no function named “${name}”.` : e.message));
    return;
  }
  const head = el("div", { class: "page-head" });
  const config = el("div", { class: "card" }, el("h2", {}, "Configuration"));
  const versions = el("div", { class: "card" }, el("h2", {}, "Versions"));
  const renderHead = (f) => head.replaceChildren(
    el("h1", { id: "fn-name" }, f.name),
    el("span", { class: "badge accent" }, `live v${f.live}`),
    el("div", { class: "chips" }, aliasText(f).filter((a) => !a.startsWith("live ")).map((a) => el("span", { class: "badge" }, a))),
  );
  renderHead(fn);

  const charts = chartsCard(name, signal);
  const invoke = invokeCard(name, () => { charts.refresh(); history.refresh(); });
  const logs = logsCard(name, signal);
  const history = historyCard(name, signal);
  show(
    el("div", { class: "crumbs" }, el("a", { href: "#/functions" }, "Functions"), " / ", name),
    head,
    charts.node,
    el("div", { class: "grid2 row-gap" }, invoke, logs),
    history.node,
    el("div", { class: "grid2" }, config, versions),
  );

  let seen = "";
  every(10000, signal, async () => {
    const f = await api(`/v1/functions/${enc(name)}`, { signal });
    const { versions: vs } = await api(`/v1/functions/${enc(name)}/versions`, { signal });
    const key = JSON.stringify([f.live, f.aliases, vs.length]);
    if (key === seen) return;
    seen = key;
    renderHead(f);
    const live = vs.find((v) => v.version === f.live) || vs[vs.length - 1];
    renderConfig(config, live);
    versions.replaceChildren(el("h2", {}, "Versions"), el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", {}, "Created"), el("th", {}, "Runtime"),
        el("th", { class: "num" }, "Memory"), el("th", {}, "Code"))),
      el("tbody", {}, vs.slice().reverse().map((v) => el("tr", {},
        el("td", {}, `v${v.version} `, v.version === f.live ? el("span", { class: "badge accent" }, "live") : ""),
        el("td", { class: "small" }, new Date(v.createdAt).toLocaleString()),
        el("td", {}, v.spec.runtime),
        el("td", { class: "num" }, `${v.spec.memory} MB`),
        el("td", { class: "mono small nowrap", title: v.codeDigest }, `${v.codeDigest.replace("sha256:", "").slice(0, 12)} · ${fmtBytes(v.codeSize)}`)))))));
  });
}

function renderConfig(card, v) {
  const s = v.spec;
  const env = Object.keys(s.env || {});
  const rows = [
    ["Version", `v${v.version}`],
    ["Runtime", `${s.runtime}${v.shape ? ` (${v.shape})` : ""}`],
    ["Memory", `${s.memory} MB`],
    ["Timeout", s.timeout],
    ["Max concurrency", fmtInt(s.maxConcurrency)],
    ["Min instances", fmtInt(s.minInstances || 0)],
    ["Idle timeout", s.idleTimeout],
    ["Queue timeout", s.queueTimeout],
    ["Body limit", fmtBytes(s.maxBodyBytes)],
    ["Triggers", (s.triggers || []).map(triggerText).join(", ") || "HTTP only"],
    ["Environment", env.length ? env.sort().join(", ") : "none"],
    ["Code", `${v.codeDigest} (${fmtBytes(v.codeSize)})`],
  ];
  card.replaceChildren(el("h2", {}, "Configuration"),
    el("dl", { class: "kv" }, rows.flatMap(([k, val]) => [el("dt", {}, k), el("dd", {}, val ?? "")])));
}

// ---------- invoke ----------

function invokeCard(name, after) {
  const method = el("select", { id: "invoke-method" }, ["GET", "POST", "PUT", "PATCH", "DELETE"].map((m) => el("option", { value: m }, m)));
  const path = el("input", { type: "text", id: "invoke-path", value: "/", spellcheck: false });
  const body = el("textarea", { id: "invoke-body", placeholder: "request body (sent with POST, PUT and PATCH)", spellcheck: false });
  const submit = el("button", { type: "submit", id: "invoke-submit" }, "Invoke");
  const result = el("div", { class: "result", id: "invoke-result", hidden: true });
  const syncBody = () => { body.disabled = method.value === "GET" || method.value === "DELETE"; };
  method.addEventListener("change", syncBody);
  syncBody();
  const form = el("form", {
    id: "invoke-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      let p = path.value.trim() || "/";
      if (!p.startsWith("/") && !p.startsWith("?")) p = "/" + p;
      const init = { method: method.value, headers: {} };
      if (!body.disabled && body.value !== "") {
        init.body = body.value;
        try { JSON.parse(body.value); init.headers["Content-Type"] = "application/json"; } catch { init.headers["Content-Type"] = "text/plain; charset=utf-8"; }
      }
      const t0 = performance.now();
      try {
        // The admin token is deliberately not sent: the function would see it.
        const resp = await fetch(`/fn/${enc(name)}${p === "/" ? "" : p}`, init);
        const text = await resp.text();
        renderResult(result, resp, text, performance.now() - t0);
      } catch (e) {
        result.replaceChildren(el("p", { class: "notice error" }, `Request failed: ${e.message}`));
        result.hidden = false;
      } finally {
        submit.disabled = false;
        after();
      }
    },
  },
  el("div", { class: "form-row" }, el("div", {}, el("label", { htmlFor: "invoke-method" }, "Method"), method),
    el("div", {}, el("label", { htmlFor: "invoke-path" }, `Path after /fn/${name}`), path)),
  el("label", { htmlFor: "invoke-body" }, "Body"), body,
  el("div", { class: "form-actions" }, submit, el("span", { class: "muted small" }, "Runs the live version, like any client would.")));
  return el("div", { class: "card" }, el("h2", {}, "Invoke"), form, result);
}

function renderResult(box, resp, text, ms) {
  const id = resp.headers.get("X-Gust-Invocation-Id") || "";
  const headers = [...resp.headers.entries()].sort(([a], [b]) => a.localeCompare(b));
  const shown = text.length > 65536 ? text.slice(0, 65536) + "\n…[truncated in the console]" : text;
  box.replaceChildren(
    el("div", { class: "result-head" },
      el("span", { id: "invoke-status", class: `status-code s${String(resp.status)[0]}` }, `${resp.status} ${resp.statusText}`),
      el("span", { class: "muted small" }, `${fmtMs(ms)} round trip`),
      id ? el("span", { class: "small" }, "invocation ", el("code", { id: "invoke-id" }, id)) : ""),
    el("details", {}, el("summary", {}, `${headers.length} response headers`),
      el("table", { class: "headers" }, el("tbody", {}, headers.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v)))))),
    el("pre", { class: "body", id: "invoke-response" }, shown || el("span", { class: "muted" }, "(empty body)")),
  );
  box.hidden = false;
}

// ---------- live logs ----------

function logsCard(name, signal) {
  const state = el("span", { class: "live-dot", id: "logs-state" }, "connecting");
  const list = el("div", { class: "logs", id: "logs", role: "log", "aria-live": "polite" });
  const empty = el("div", { class: "empty" }, "No log lines in the last hour.");
  list.append(empty);
  const add = (e) => {
    empty.remove();
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.append(el("div", { class: "log-line" },
      el("span", { class: "t", title: new Date(e.time).toLocaleString() }, fmtTime(e.time)),
      el("span", { class: `st ${e.stream}` }, e.stream),
      el("span", { class: "inv", title: e.invocation || "" }, e.invocation ? e.invocation.slice(-8) : "–"),
      el("span", { class: "msg" }, e.message)));
    while (list.childElementCount > 1000) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
  };
  followLogs(name, signal, add, (s) => {
    state.className = `live-dot ${s === "live" ? "live" : "down"}`;
    state.textContent = s;
    if (s !== "live") { list.replaceChildren(empty); }
  });
  return el("div", { class: "card" },
    el("div", { class: "card-head" }, el("h2", {}, "Logs"), state),
    list);
}

// followLogs reads the NDJSON log stream and reconnects (from a fresh
// backlog) when it breaks, until signal aborts.
async function followLogs(name, signal, onEntry, onState) {
  const since = new Date(Date.now() - 3600e3).toISOString();
  while (!signal.aborted) {
    try {
      const resp = await api(`/v1/functions/${enc(name)}/logs?follow=true&limit=200&since=${enc(since)}`, {
        signal, raw: true, headers: { Accept: "application/x-ndjson" },
      });
      onState("live");
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line) {
            try { onEntry(JSON.parse(line)); } catch { /* a torn line; skip it */ }
          }
        }
      }
      if (signal.aborted) return;
      onState("reconnecting");
    } catch (e) {
      if (signal.aborted || e.status === 401) return;
      onState(e.code === "not_found" ? "no such function" : "reconnecting");
    }
    await sleep(2000, signal);
  }
}

// ---------- recent invocations ----------

function historyCard(name, signal) {
  const err = el("p", { class: "notice error", hidden: true });
  const body = el("div", { class: "table-wrap" }, el("p", { class: "empty" }, "Loading…"));
  let wake = () => {};
  const load = async () => {
    const { invocations } = await api(`/v1/invocations?function=${enc(name)}&limit=20`, { signal });
    if (invocations.length === 0) {
      body.replaceChildren(el("p", { class: "empty" }, "No invocations in the last 24 hours."));
      return;
    }
    body.replaceChildren(el("table", { id: "invocations" },
      el("thead", {}, el("tr", {}, el("th", {}, "Invocation"), el("th", {}, "Version"), el("th", {}, "Trigger"),
        el("th", {}, "Started"), el("th", { class: "num" }, "Duration"), el("th", { class: "num" }, "Billed"),
        el("th", {}, "Start"), el("th", {}, "Status"))),
      el("tbody", {}, invocations.map((r) => el("tr", {},
        el("td", { class: "mono small" }, r.id),
        el("td", {}, `v${r.version}`),
        el("td", {}, r.trigger || "http"),
        el("td", { class: "small", title: new Date(r.start).toLocaleString() }, fmtTime(r.start)),
        el("td", { class: "num" }, fmtMs(r.durationUs / 1000)),
        el("td", { class: "num" }, `${fmtInt(r.billedMs)} ms`),
        el("td", {}, r.cold ? el("span", { class: "badge" }, "cold") : el("span", { class: "muted small" }, "warm")),
        el("td", {}, el("span", { class: `badge ${r.status}` }, r.status)))))));
  };
  (async () => {
    while (!signal.aborted) {
      try {
        await load();
        err.hidden = true;
      } catch (e) {
        if (signal.aborted || e.name === "AbortError" || e.status === 401) return;
        err.textContent = e.message;
        err.hidden = false;
      }
      await new Promise((resolve) => { wake = resolve; sleep(5000, signal).then(resolve); });
    }
  })();
  return {
    node: el("div", { class: "card" }, el("h2", {}, "Recent invocations"), err, body),
    refresh: () => setTimeout(() => wake(), 300),
  };
}

// ---------- charts ----------

const WINDOWS = { "5m": "5s", "15m": "15s", "1h": "1m" };

function chartsCard(name, signal) {
  let windowKey = "15m";
  const err = el("p", { class: "notice error", hidden: true });
  const totals = el("div", { class: "totals" });
  const cRequests = chart("Invocations and errors", [["invocations", "invocations", "c0"], ["errors", "errors", "c1"]], fmtInt);
  // A step in which nothing ran has no duration: a gap, not a zero.
  const ran = (p) => p.invocations > 0;
  const cDuration = chart("Duration", [["p50ms", "p50", "c0", ran], ["p99ms", "p99", "c1", ran]], fmtMs);
  const cStarts = chart("Cold starts and throttles", [["coldStarts", "cold starts", "c2"], ["throttles", "throttles", "c3"]], fmtInt);
  const seg = el("div", { class: "seg" }, Object.keys(WINDOWS).map((k) =>
    el("button", { type: "button", class: k === windowKey ? "on" : "", onclick: (ev) => {
      windowKey = k;
      for (const b of seg.children) b.classList.toggle("on", b === ev.target);
      wake();
    } }, k)));
  let wake = () => {};
  let last = null;
  const load = async () => {
    const data = await api(`/v1/functions/${enc(name)}/stats?window=${windowKey}&step=${WINDOWS[windowKey]}`, { signal });
    last = data;
    draw();
  };
  const draw = () => {
    if (!last) return;
    const pts = last.points;
    const sum = (k) => pts.reduce((a, p) => a + p[k], 0);
    const inv = sum("invocations");
    const worst = pts.reduce((a, p) => Math.max(a, p.p99ms), 0);
    const nowRps = pts.length > 1 ? pts[pts.length - 2].rps : 0;
    totals.replaceChildren(
      total("stat-invocations", fmtInt(inv), `invocations, last ${windowKey}`),
      total("stat-errors", fmtInt(sum("errors")), "errors"),
      total("stat-rps", fmtNum(nowRps, 2), "req/s (last step)"),
      total("stat-p99", worst ? fmtMs(worst) : "–", "worst p99"),
      total("stat-cold", fmtInt(sum("coldStarts")), "cold starts"),
      total("stat-throttles", fmtInt(sum("throttles")), "throttles"),
    );
    cRequests.draw(pts);
    cDuration.draw(pts);
    cStarts.draw(pts);
  };
  const ro = new ResizeObserver(() => draw());
  (async () => {
    while (!signal.aborted) {
      try {
        await load();
        err.hidden = true;
      } catch (e) {
        if (signal.aborted || e.name === "AbortError" || e.status === 401) return;
        err.textContent = e.message;
        err.hidden = false;
      }
      await new Promise((resolve) => { wake = resolve; sleep(3000, signal).then(resolve); });
    }
  })();
  const grid = el("div", { class: "grid3" }, cRequests.node, cDuration.node, cStarts.node);
  ro.observe(grid);
  signal.addEventListener("abort", () => ro.disconnect());
  return {
    node: el("div", { class: "card", id: "charts" },
      el("div", { class: "card-head" }, el("h2", {}, "Activity"), el("span", { class: "spacer" }),
        el("span", { class: "muted small" }, "this node, refreshed every 3 seconds"), seg),
      err, totals, grid),
    refresh: () => setTimeout(() => wake(), 300),
  };
}

function total(id, value, label) {
  return el("div", { class: "total" }, el("div", { class: "v", id }, value), el("div", { class: "k" }, label));
}

// chart draws series (field, label, colour class, and optionally a
// predicate saying which points have a value) of the points as lines in an
// SVG sized to its box, with a hover read-out.
function chart(title, series, fmt) {
  const legend = el("div", { class: "legend" });
  const svg = el("svg:svg", { class: "plot", role: "img", "aria-label": title });
  const tip = el("div", { class: "tip", hidden: true });
  const node = el("div", { class: "chart" }, el("h3", {}, title), legend, svg, tip);
  let pts = [];
  let geo = null;

  function draw(points) {
    pts = points;
    const W = Math.max(svg.clientWidth || 300, 200);
    const H = svg.clientHeight || 170;
    const padL = 46, padR = 8, padT = 8, padB = 20;
    const n = pts.length;
    let maxY = 0;
    const has = (p, s) => !s[3] || s[3](p);
    for (const p of pts) for (const s of series) if (has(p, s)) maxY = Math.max(maxY, p[s[0]]);
    const [top, ticks] = niceScale(maxY);
    const x = (i) => padL + (n <= 1 ? 0 : (i * (W - padL - padR)) / (n - 1));
    const y = (v) => padT + (H - padT - padB) * (1 - v / top);
    geo = { x, n, padL, W, padR };
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const kids = [];
    for (const t of ticks) {
      kids.push(el("svg:line", { class: "grid", x1: padL, x2: W - padR, y1: y(t), y2: y(t) }));
      kids.push(el("svg:text", { class: "axis", x: padL - 6, y: y(t) + 3.5, "text-anchor": "end" }, fmt(t)));
    }
    const labels = Math.min(4, n);
    for (let j = 0; j < labels && n > 1; j++) {
      const i = Math.round((j * (n - 1)) / (labels - 1));
      const anchor = j === 0 ? "start" : j === labels - 1 ? "end" : "middle";
      kids.push(el("svg:text", { class: "axis", x: x(i), y: H - 4, "text-anchor": anchor }, fmtHM(pts[i].t)));
    }
    for (const s of series) {
      const [k, , cls] = s;
      // Runs of points with a value; a lone point is drawn as a dot.
      let run = [];
      const flush = () => {
        if (run.length === 1) {
          kids.push(el("svg:circle", { class: cls, cx: x(run[0]), cy: y(pts[run[0]][k]), r: 2.5 }));
        } else if (run.length > 1) {
          const line = run.map((i) => `${x(i).toFixed(1)},${y(pts[i][k]).toFixed(1)}`).join(" ");
          kids.push(el("svg:polygon", { class: `area ${cls}`, points: `${x(run[0])},${y(0)} ${line} ${x(run[run.length - 1])},${y(0)}` }));
          kids.push(el("svg:polyline", { class: `line ${cls}`, points: line }));
        }
        run = [];
      };
      pts.forEach((p, i) => { if (has(p, s)) run.push(i); else flush(); });
      flush();
    }
    kids.push(el("svg:line", { class: "cursor", x1: 0, x2: 0, y1: padT, y2: H - padB, visibility: "hidden" }));
    svg.replaceChildren(...kids);
    const lastPt = pts[n - 1] || {};
    legend.replaceChildren(...series.map(([k, label, cls]) =>
      el("span", { class: cls }, label, el("b", {}, fmt(seriesTotal(k))))));
    function seriesTotal(k) {
      // Counts read as totals over the window; durations as the latest value.
      if (k.endsWith("ms")) {
        for (let i = n - 1; i >= 0; i--) if (pts[i][k]) return pts[i][k];
        return 0;
      }
      return pts.reduce((a, p) => a + p[k], 0) || lastPt[k] || 0;
    }
  }

  svg.addEventListener("mousemove", (ev) => {
    if (!geo || geo.n === 0) return;
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) * geo.W) / r.width;
    const i = Math.max(0, Math.min(geo.n - 1, Math.round(((px - geo.padL) / (geo.W - geo.padL - geo.padR)) * (geo.n - 1))));
    const p = pts[i];
    const cursor = svg.querySelector(".cursor");
    cursor.setAttribute("x1", geo.x(i));
    cursor.setAttribute("x2", geo.x(i));
    cursor.setAttribute("visibility", "visible");
    tip.replaceChildren(el("div", { class: "muted" }, fmtTime(p.t)),
      ...series.map((s) => el("div", { class: "legend" }, el("span", { class: s[2] }, s[1], el("b", {}, !s[3] || s[3](p) ? fmt(p[s[0]]) : "–")))));
    tip.hidden = false;
    const left = (geo.x(i) * r.width) / geo.W;
    tip.style.left = `${Math.min(left + 12, r.width - tip.offsetWidth)}px`;
    tip.style.top = `${svg.offsetTop + 4}px`;
  });
  svg.addEventListener("mouseleave", () => {
    tip.hidden = true;
    svg.querySelector(".cursor")?.setAttribute("visibility", "hidden");
  });
  return { node, draw };
}

function fmtHM(t) {
  return new Date(t).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
}

// niceScale returns a round top for the y axis and its ticks.
function niceScale(max) {
  if (!(max > 0)) return [1, [0, 0.5, 1]];
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const top = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(+v.toPrecision(12));
  return [top, ticks];
}

// ---------- usage ----------

const RANGES = [["1h", "last hour"], ["24h", "last 24 hours"], ["168h", "last 7 days"], ["720h", "last 30 days"]];

async function usagePage(signal) {
  let since = "24h";
  const err = el("p", { class: "notice error", hidden: true });
  const body = el("div", { class: "table-wrap" }, el("p", { class: "empty" }, "Loading…"));
  const note = el("p", { class: "muted small" });
  const range = el("select", { id: "usage-range", onchange: () => { since = range.value; wake(); } },
    RANGES.map(([v, label]) => el("option", { value: v, selected: v === since }, label)));
  show(
    el("div", { class: "page-head" }, el("h1", {}, "Usage"), el("span", { class: "spacer" }), el("div", {}, range)),
    err,
    el("div", { class: "card" }, body, note),
  );
  let wake = () => {};
  while (!signal.aborted) {
    try {
      const rep = await api(`/v1/usage?since=${enc(since)}`, { signal });
      err.hidden = true;
      note.textContent = `Estimated at ${fmtCost(rep.pricePerGBSecond)} per GB-second and ${fmtCost(rep.pricePerMillionRequests)} per million requests, ` +
        `${new Date(rep.since).toLocaleString()} to ${new Date(rep.until).toLocaleString()}. Billed time is each invocation rounded up to the millisecond.`;
      const fns = rep.functions || [];
      if (fns.length === 0) {
        body.replaceChildren(el("p", { class: "empty" }, "No usage in this period."));
      } else {
        const row = (t, name) => el("tr", {},
          el("td", {}, name),
          el("td", { class: "num" }, fmtInt(t.invocations)),
          el("td", { class: "num" }, fmtInt(t.errors)),
          el("td", { class: "num" }, fmtInt(t.throttles)),
          el("td", { class: "num" }, fmtInt(t.coldStarts)),
          el("td", { class: "num" }, fmtInt(t.billedMs)),
          el("td", { class: "num" }, fmtNum(t.gbSeconds, 4)),
          el("td", { class: "num" }, fmtCost(t.estimatedCost)));
        body.replaceChildren(el("table", { id: "usage" },
          el("thead", {}, el("tr", {}, el("th", {}, "Function"), el("th", { class: "num" }, "Invocations"),
            el("th", { class: "num" }, "Errors"), el("th", { class: "num" }, "Throttles"), el("th", { class: "num" }, "Cold starts"),
            el("th", { class: "num" }, "Billed ms"), el("th", { class: "num" }, "GB-seconds"), el("th", { class: "num" }, "Estimated cost"))),
          el("tbody", {}, fns.map((t) => row(t, el("a", { href: `#/functions/${enc(t.function)}` }, t.function)))),
          el("tfoot", {}, row(rep.total, "Total"))));
      }
    } catch (e) {
      if (signal.aborted || e.name === "AbortError" || e.status === 401) return;
      err.textContent = e.message;
      err.hidden = false;
    }
    await new Promise((resolve) => { wake = resolve; sleep(10000, signal).then(resolve); });
  }
}

// ---------- boot ----------

document.getElementById("signout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
if (token()) start(); else renderSignIn();
