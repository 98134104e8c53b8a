// Package cluster makes several gust nodes on one NATS JetStream cluster act
// as one platform: it keeps the list of live nodes, shares each function's
// max concurrency among them, and forwards a sync invocation that this node
// has no room for to a node that has.
//
// Membership: every node publishes a heartbeat on a plain NATS subject
// (HeartbeatSubject) every Config.Interval with its id, address, version,
// load, instances and memory; a node not heard from for Config.Missed
// intervals is dropped, and a node that closes says so at once. Plain
// subjects and not a KV bucket: a heartbeat is worth nothing once the next
// one is due, so it need not be stored or replicated.
//
// Shares: a version's max concurrency N is split into per-node shares of
// ceil(N / live nodes) (at least 1), recomputed from the live count on every
// call, so shares rebalance as soon as membership changes.
//
// Forwarding: Cluster implements the gateway's Invoker. A call runs here when
// this node is under its share and its memory budget; otherwise it goes over
// NATS request-reply to the subject of another node (Member.Subject), least
// loaded first, carrying the request, its invocation id and its deadline. A
// forwarded call is always run where it lands (a hop limit of one): the
// receiving node answers "throttled" rather than forward again, and the
// sender tries the next node. Only when no node has room does the caller get
// 429.
//
// It must not know HTTP beyond serving the node list, pick HTTP statuses
// (errors are *gust.Error codes), or reach into a driver or the pool: it
// speaks to the invoker through Local.
package cluster
