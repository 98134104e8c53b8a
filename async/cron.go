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
		a.fireCron(ctx, name, idx, t, next, false)
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
		a.fireCron(ctx, name, idx, t, tick, true)
	}
}

func (a *Async) fireCron(ctx context.Context, name string, idx int, t gust.Trigger, tick time.Time, catchUp bool) {
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
	created, err := a.enqueueOnce(ctx, ev, fmt.Sprintf("cron:%s:%d:%d", name, idx, tick.Unix()))
	if err != nil {
		a.log.Warn("cron tick not enqueued", "function", name, "tick", tick, "err", err)
		return
	}
	if created {
		a.log.Debug("cron tick enqueued", "function", name, "tick", tick, "invocation", id)
	}
	a.recordTick(ctx, name, idx, tick)
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
