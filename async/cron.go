package async

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/trace"
)

// CronEvent is the JSON body of a cron tick's CloudEvent.
type CronEvent struct {
	Schedule string    `json:"schedule"`
	Timezone string    `json:"timezone,omitempty"`
	Tick     time.Time `json:"tick"`
	Trigger  int       `json:"trigger"` // index in the spec's triggers, from 0
	CatchUp  bool      `json:"catchUp,omitempty"`
}

// cronID is the invocation id of a tick: the same on every node, so the
// status KV Create lets exactly one node enqueue it.
func cronID(function string, idx int, tick time.Time) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("cron:%s:%d:%d", function, idx, tick.Unix())))
	return hex.EncodeToString(sum[:16])
}

// runCron fires t's ticks until ctx ends: first a tick missed while no node
// ran (if within t.CatchUp), then each tick as it comes.
func (a *Async) runCron(ctx context.Context, name string, idx int, t gust.Trigger) {
	sched, err := parseSchedule(t.Cron, t.Timezone)
	if err != nil {
		a.log.Error("cron trigger not started", "function", name, "trigger", idx+1, "err", err)
		return
	}
	a.cronCatchUp(ctx, name, idx, t, sched)
	last := a.now()
	for {
		next := sched.Next(last)
		if next.IsZero() {
			a.log.Warn("cron schedule has no next tick", "function", name, "cron", t.Cron)
			return
		}
		if !sleep(ctx, next.Sub(a.now())) {
			return
		}
		a.fireCron(ctx, name, idx, t, next, false, sched.Next(next))
		// A timer may fire a hair early by the wall clock: never let that
		// make the same tick come round twice.
		last = next
		if now := a.now(); now.After(last) {
			last = now
		}
	}
}

// cronCatchUp fires the latest tick missed since the last fired one, if it
// is within t.CatchUp of now. With no record yet it records now, so ticks
// missed from here on can be caught up.
func (a *Async) cronCatchUp(ctx context.Context, name string, idx int, t gust.Trigger, sched schedule) {
	key := cronKey(name, idx)
	now := a.now()
	e, err := a.triggers.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		_, _ = a.triggers.Create(ctx, key, []byte(strconv.FormatInt(now.Unix(), 10)))
		return
	}
	if err != nil {
		a.log.Warn("cron catch-up: reading last tick", "function", name, "err", err)
		return
	}
	if t.CatchUp <= 0 {
		return
	}
	sec, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return
	}
	from := time.Unix(sec, 0)
	if earliest := now.Add(-t.CatchUp.D()); earliest.After(from) {
		from = earliest
	}
	if tick := latestTick(sched, from, now); !tick.IsZero() {
		a.log.Info("cron catch-up: firing a missed tick", "function", name, "tick", tick)
		a.fireCron(ctx, name, idx, t, tick, true, sched.Next(now))
	}
}

// Retries of a tick whose enqueue failed: the first after
// cronRetryFirst, doubling up to cronRetryMax, and none that would start
// after the next tick.
const (
	cronRetryFirst = 250 * time.Millisecond
	cronRetryMax   = 30 * time.Second
)

// enqueueTick enqueues a tick's event once across nodes; tests replace it
// to make an enqueue fail on cue, as a NATS outage would.
var enqueueTick = (*Async).enqueueOnce

// fireCron enqueues tick. An enqueue that fails (NATS away for a moment)
// is retried with backoff until the next tick, until, is due: a tick is
// dropped only if it could not be stored before the next one.
func (a *Async) fireCron(ctx context.Context, name string, idx int, t gust.Trigger, tick time.Time, catchUp bool, until time.Time) {
	id := cronID(name, idx, tick)
	body, err := json.Marshal(CronEvent{Schedule: t.Cron, Timezone: t.Timezone, Tick: tick.UTC(), Trigger: idx, CatchUp: catchUp})
	if err != nil {
		return
	}
	// With tracing on, the tick is the root of its invocation's trace.
	tctx, end := a.cfg.Tracer.StartProducer(ctx, trace.SpanCronTick, id)
	defer end()
	header := ceHeader(CETypeCron, "/gust/cron/"+name, id, "", "application/json", tick)
	setCETrace(tctx, header)
	ev := &Event{
		ID: id, Function: name, Method: http.MethodPost, Path: "/",
		Header: header, Trigger: "cron", AcceptedAt: a.now(), Body: body,
	}
	msgID := fmt.Sprintf("cron:%s:%d:%d", name, idx, tick.Unix())
	delay := cronRetryFirst
	for failed := false; ; failed = true {
		created, err := enqueueTick(a, ctx, ev, msgID)
		if err == nil && !created && failed {
			// A failed try may have left its queued record behind (its
			// clean-up failed too), which makes this one look like another
			// node's enqueue: store the event unless the record shows it
			// ran. The stream's duplicate window and the status checks of
			// the worker keep a real second copy from running twice.
			created, err = a.readoptTick(ctx, ev, msgID)
		}
		if err == nil {
			if created {
				a.log.Debug("cron tick enqueued", "function", name, "tick", tick, "invocation", id)
			}
			break
		}
		if ctx.Err() != nil || until.IsZero() || !a.now().Add(delay).Before(until) {
			a.log.Error("cron tick dropped: not enqueued before the next tick", "function", name, "tick", tick, "invocation", id, "err", err)
			return
		}
		a.log.Warn("cron tick not enqueued; retrying", "function", name, "tick", tick, "retryIn", delay, "err", err)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, cronRetryMax)
	}
	a.recordTick(ctx, name, idx, tick)
}

// readoptTick stores ev again if its status record says it is still
// queued and never started.
func (a *Async) readoptTick(ctx context.Context, ev *Event, msgID string) (bool, error) {
	st, _, err := a.getStatus(ctx, ev.ID)
	if gust.ErrorCode(err) == gust.ENOTFOUND {
		return enqueueTick(a, ctx, ev, msgID)
	}
	if err != nil {
		return false, err
	}
	if st.Status != StatusQueued || st.Attempts > 0 || st.StartedAt != nil {
		return false, nil
	}
	if _, err := a.store(ev, msgID); err != nil {
		return false, err
	}
	return true, nil
}

// recordTick remembers tick as the last fired one unless a later one is
// recorded.
func (a *Async) recordTick(ctx context.Context, name string, idx int, tick time.Time) {
	key := cronKey(name, idx)
	val := []byte(strconv.FormatInt(tick.Unix(), 10))
	for range 3 {
		e, err := a.triggers.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := a.triggers.Create(ctx, key, val); err == nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if sec, err := strconv.ParseInt(string(e.Value()), 10, 64); err == nil && sec >= tick.Unix() {
			return
		}
		if _, err := a.triggers.Update(ctx, key, val, e.Revision()); err == nil {
			return
		}
	}
}
