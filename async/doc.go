// Package async runs functions asynchronously: `POST /async/NAME[@REF][/...]`
// stores the request as an event in a JetStream stream and answers 202 only
// once the stream has acknowledged it; workers on every node share one
// durable consumer and run each event at least once through the Invoker,
// with retries, backoff, a maximum event age and a dead-letter stream. It
// also runs the event sources that feed the same path: cron schedules and
// NATS subject and stream triggers declared in a live version's spec.
//
// The life of an async invocation:
//
//  1. Accept: the function is resolved (404 if unknown), the body bounded
//     (413: by the function's limit, or lower by what fits one NATS message
//     with the event's metadata, and the answer says which), an
//     X-Gust-Callback-Url checked (400), an Idempotency-Key
//     claimed with a KV Create (a repeat within the window answers the
//     first id). The event is published to GUST_ASYNC: the accept's one
//     durable write; 202 follows its own PubAck, never before. The message
//     is the event's metadata as a line of JSON, then the body, and has no
//     NATS headers, which the server would scan for its own once per
//     header it knows. Its subject is gust.async.NAME, shared by the
//     function's events (a subject per event cost the server two subject
//     tree inserts per message), and the invocation id is a random part,
//     "-", and the event's stream sequence from the PubAck (so an id
//     names its message without a subject of its own). An accept with an
//     Idempotency-Key, whose record names the id before the event is
//     stored, and webhook deliveries, whose CloudEvent carries the id,
//     keep a chosen id under gust.async.NAME.ID. Publishes are
//     asynchronous on one shared publisher (publish.go) with a bounded
//     window, so concurrent accepts share the connection's writes. No
//     status record is written: until a worker writes one,
//     GET /v1/invocations/ID finds the event in the stream by its sequence
//     (checking the random part) or by its subject, and reports it queued
//     (a worker records a status before it acks, so one of the two always
//     exists). A cron tick, whose id every node computes alike, writes its
//     "queued" record first, with KV Create, so that it is enqueued once.
//     Every answer carries X-Gust-Invocation-Id, as on /fn: an error's
//     names nothing stored. Another method than POST is 405 with Allow.
//  2. Run: a worker takes the event, resolves NAME@REF again (so a redrive
//     after a fix runs the fixed version) and invokes with Trigger "async"
//     (or "cron", ...). It moves the status to "running" with a revision
//     check, or creates it if none exists (so a concurrent cancel, which
//     creates or updates the record too, wins or loses cleanly): with an
//     Invoker that is also a StartInvoker, only once an instance is
//     leased, so that an event waiting for a free instance stays
//     "queued" and cancellable and its waits are neither attempts nor
//     recorded throttles; with a plain Invoker, before the call. The
//     function sees X-Gust-Invocation-Id and X-Gust-Attempt (1 for the
//     first attempt).
//     While it runs the worker tells JetStream the message is in progress,
//     so a crashed node's events return to the queue after AckWait, not
//     after the longest timeout.
//  3. Outcome: a response, whatever its status, is "succeeded" and stored
//     (body up to MaxResponseBytes, marked truncated beyond). Like Lambda,
//     a 5xx answer is not retried: the function ran and chose its answer,
//     and retrying would repeat its side effects for what is often a
//     permanent condition (bad input); the stored status shows the code.
//     A function error, timeout or out-of-memory is retried after
//     RetryBackoff doubling per attempt with jitter, Retries times, while
//     the event is younger than MaxEventAge; then the event goes to the
//     GUST_DLQ stream (subject gust.dlq.NAME) with its last error and the
//     status becomes "dead-lettered". Throttling (ETHROTTLED, ECAPACITY) and
//     a node shutting down are not attempts: the event waits and retries.
//     A function that no longer exists ends "failed".
//  4. A callback URL gets the final status JSON by POST, retried a bounded
//     number of times (best effort: not repeated after a crash).
//
// Tracing (with a Tracer that has an endpoint): an accept is a server span
// ("POST /async/{name}", "POST /hooks/{path}") in the caller's trace, and a
// cron tick a root span ("cron tick"). The event carries that span's
// context: HTTP-shaped events as their traceparent header, CloudEvents as
// the distributed-tracing extension (ce-traceparent, ce-tracestate). The
// worker records the queue wait (from the accept, or from when a retry
// was due, to the dequeue) and hands the invoker that context, so the
// cold-start and execution spans join the same trace under the accept.
//
// GET /v1/invocations/ID answers for a sync invocation too (a call to
// /fn, a NATS subject or stream trigger) when Config.Sync finds its
// record: the same Status shape with Kind "sync", succeeded or failed in
// one attempt, with its duration, cold start and error. Async ids are
// looked up first; the record of an event that came through the async
// stream is never passed off as a sync call.
//
// Dead letters are listed, redriven (re-enqueued with attempts reset) and
// purged per function through the admin routes.
//
// Triggers follow the registry: when a function's live version changes
// (OnChange, plus a periodic resync) its runners are stopped and those of
// the new live version started. Cron ticks are deduplicated across nodes by
// a deterministic invocation id created with KV Create, so a tick fires
// once however many nodes share the NATS. Subject triggers use a queue
// group per function and trigger (at most once); stream triggers a durable
// consumer per function and trigger (at least once, MaxDeliveries then
// dead letter). Non-HTTP events reach functions as CloudEvents 1.0 in
// binary mode.
//
// Webhook triggers need no runner: the live versions' webhook paths form a
// routing table, and WebhookHandler (mounted at /hooks/) checks a
// delivery's signature in constant time, with the secret the trigger names
// (read through SecretSource), before anything is stored: github
// (X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>), stripe
// (Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">, t within
// the tolerance, default 5m, against replay) or hmac-sha256 (X-Signature:
// <hex HMAC-SHA256 of the body>). A bad or missing signature is 401 with
// nothing stored; a good one is 202 at once and the event runs like an
// async invocation with Trigger "webhook", as a CloudEvent of type
// dev.gust.webhook with the delivery's own headers. A GitHub redelivery
// (same X-GitHub-Delivery), a replayed stripe signature or a repeated
// Idempotency-Key answers the first invocation's id.
//
// It must not import a driver, the pool or the registry implementation: it
// reaches functions through the Invoker interface and the registry through
// gust.Registry. HTTP errors go through httperr only.
package async
