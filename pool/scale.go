package pool

import (
	"slices"
	"time"
)

// Spec is what the scaling decisions read of a version's spec.
type Spec struct {
	MinInstances int           // kept warm, never reaped
	IdleTimeout  time.Duration // an instance idle this long or longer is reaped
}

// InstanceState is what a decision sees of one live instance.
type InstanceState struct {
	LastUsed time.Time // when its last lease was released, or when it started
	Busy     bool      // at least one lease in flight
}

// State is the observed state of a pool.
type State struct {
	Instances []InstanceState // live instances (not counting those starting)
	Starting  int             // instances being started
}

// Plan is what Decide asks the pool to do.
type Plan struct {
	// Reap lists the idle instances to close, as indexes into
	// State.Instances, least recently used first.
	Reap []int
	// Start is how many instances to start to reach MinInstances.
	Start int
}

// Decide is the scaling decision: reap instances idle for IdleTimeout or
// longer, least recently used first, but never a busy one and never below
// MinInstances live instances (busy ones count: they are warm); start
// enough instances that live plus starting reach MinInstances. The
// instances kept for MinInstances are the most recently used, which are
// the ones most likely to be warm in every cache.
//
// Starting instances do not protect live ones from reaping, because a
// start can fail; they do count against Start so a slow start is not
// doubled.
func Decide(now time.Time, s State, spec Spec) Plan {
	var plan Plan
	live := len(s.Instances)
	if need := spec.MinInstances - live - s.Starting; need > 0 {
		plan.Start = need
	}
	reapable := live - spec.MinInstances
	if reapable <= 0 {
		return plan
	}
	expired := 0
	for _, in := range s.Instances {
		if !in.Busy && now.Sub(in.LastUsed) >= spec.IdleTimeout {
			expired++
		}
	}
	if expired == 0 {
		return plan
	}
	idx := make([]int, 0, expired)
	for i, in := range s.Instances {
		if !in.Busy && now.Sub(in.LastUsed) >= spec.IdleTimeout {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return s.Instances[a].LastUsed.Compare(s.Instances[b].LastUsed)
	})
	if len(idx) > reapable {
		idx = idx[:reapable]
	}
	plan.Reap = idx
	return plan
}

// admission is what a call to Acquire does.
type admission uint8

const (
	admitClosed   admission = iota // the pool is draining: EUNAVAILABLE
	admitIdle                      // lease an available warm instance
	admitStart                     // cold-start a new instance
	admitQueue                     // wait in the FIFO queue
	admitThrottle                  // ETHROTTLED at once
)

func (a admission) String() string {
	switch a {
	case admitClosed:
		return "closed"
	case admitIdle:
		return "idle"
	case admitStart:
		return "start"
	case admitQueue:
		return "queue"
	case admitThrottle:
		return "throttle"
	}
	return "unknown"
}

// load is what the admission decision sees of a pool.
type load struct {
	Closed         bool
	Available      int // live instances with a free lease slot
	InFlight       int // leases in flight, including those cold-starting
	Waiting        int // callers queued ahead of this one
	MaxConcurrency int
	CanWait        bool // QueueTimeout > 0
}

// admit decides what one call does. Waiters ahead of it keep their turn
// even if capacity looks free, so the queue is strictly first come, first
// served; the pool hands freed capacity to the head waiter itself (asking
// admit with Waiting 0 on its behalf). MaxConcurrency bounds the leases in
// flight, so a free slot on a shared instance (PerInstanceConcurrency > 1)
// is used only below it too.
func admit(l load) admission {
	switch {
	case l.Closed:
		return admitClosed
	case l.Waiting > 0:
		if l.CanWait {
			return admitQueue
		}
		return admitThrottle
	case l.InFlight < l.MaxConcurrency:
		if l.Available > 0 {
			return admitIdle
		}
		return admitStart
	case l.CanWait:
		return admitQueue
	default:
		return admitThrottle
	}
}

// tickInterval is how often the background loop applies Decide: every
// second, or a quarter of the idle timeout if that is shorter (so an
// instance outlives its timeout by at most a quarter), but no more often
// than every 10ms.
func tickInterval(idle time.Duration) time.Duration {
	d := time.Second
	if q := idle / 4; q < d {
		d = q
	}
	if d < 10*time.Millisecond {
		d = 10 * time.Millisecond
	}
	return d
}
