// Package asyncbench measures how many async invocations gust accepts
// durably per second, and what each part of an accept costs:
//
//   - run: Debian's wrk with accept.lua against a gust node (POST
//     /async/NAME, each 202 only after JetStream acknowledged the event)
//     in rounds alternating with bench/bare, the bare net/http floor, on
//     the same cores; ASYNC_COMPARE runs a node built from another tree in
//     the same rounds, ASYNC_PROFILE takes a CPU profile under load.
//   - store_test.go (go test -run '^$' -bench StoreVariants ./bench/async):
//     the JetStream write alone, embedded NATS as gust runs it, with
//     variants of the message (metadata in a header or in the data, a
//     subject per event or per function), of the stream (persist mode,
//     duplicate window) and of the connection (in-process pipe or TCP).
//
// Nothing here is imported by the product, and nothing asserts on time.
package asyncbench
