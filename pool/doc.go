// Package pool keeps the instances of one function version on this node and
// hands them out one call at a time: warm instances are reused (most recently
// used first, so the rest go idle and can be reaped), new ones are
// cold-started up to the version's max concurrency, excess load waits in a
// strict FIFO queue for a bounded time and is then throttled, idle instances
// are reaped down to MinInstances (scale to zero), and a node-wide Budget
// keeps the memory reserved by all pools under a limit, reclaiming the least
// recently used idle instance of another pool before it refuses a start.
//
// The scaling decisions (which idle instances to reap, how many to start,
// whether a call uses an idle instance, starts one, waits or is throttled)
// are pure functions in scale.go; Pool and Budget only observe state and
// apply them.
//
// The life of an instance in a pool:
//
//  1. Reserve: its pool's MemoryMB is reserved from the Budget, which may
//     first reclaim idle instances of other pools. A pool whose MemoryMB
//     is more than the whole Budget starts nothing: every Acquire is
//     refused with EINVALID, since no wait would help.
//  2. Start: Module.NewInstance, outside every lock, for a call (a cold
//     start, Lease.Cold) or to reach MinInstances (Prewarm, Reconcile),
//     bounded by StartTimeout (ETIMEOUT past it). A start for a call
//     outlives a caller who leaves: the instance joins the pool warm.
//  3. Serve: each Acquire leases it to one caller (PerInstanceConcurrency
//     callers at once where the driver allows); Release(nil) makes it
//     available again, handing it first to the oldest waiter, and so does
//     Release(err) when err wraps gust.ErrInstanceHealthy (the call failed,
//     the instance did not).
//  4. Discard: Release(err) for any other failed call, idle reaping, a
//     Budget reclaim or a Drain takes it out of service, returns its
//     memory to the Budget at once and then closes it; a discarded
//     instance is never handed out again.
//  5. Drain: the pool stops accepting, lets leases in flight finish, closes
//     every instance and then the module.
//
// Locks: a Pool and the Budget each have one mutex, and no goroutine ever
// holds two of them at once. The Budget asks pools for reclaimable
// instances and the pools reserve memory only with their own lock
// released, so there is no lock order to get wrong; returning memory
// takes no lock at all (an atomic counter), so a pool does it under its
// own. Drivers
// (NewInstance, Close) are never called with a lock held.
//
// It must not invoke functions, know about HTTP, export metrics or read the
// registry: the invoker acquires a lease, calls the instance and releases
// it; metrics read Stats.
package pool
