package meter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
)

// maxLookupMessages bounds the usage messages one Invocation reads, newest
// first: an id a caller was just given is in the last few, and one that is
// not there at all costs a bounded read (each message holds up to
// maxMsgRecords records).
const maxLookupMessages = 2000

// maxErrorBytes bounds the error message a record keeps.
const maxErrorBytes = 1024

// Invocation returns the record of invocation id, read from the usage
// stream newest first (records are kept for Config.Retention; the newest
// maxLookupMessages messages are searched): the newest record of id, so
// the last attempt of an invocation run more than once. Records this node
// still buffers are flushed first. Errors: ENOTFOUND.
func (m *Meter) Invocation(ctx context.Context, id string) (*gust.Invocation, error) {
	if !validID(id) {
		return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q", id)
	}
	fctx, cancel := context.WithTimeout(ctx, flushBeforeReport)
	_ = m.Flush(fctx)
	cancel()
	info, err := m.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("finding invocation %s: %w", id, err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	for seq, read := last, 0; seq >= first && seq > 0 && read < maxLookupMessages; seq, read = seq-1, read+1 {
		msg, err := m.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed by age or limits meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("finding invocation %s: %w", id, err)
		}
		data, err := messageRecords(msg.Header.Get(encodingHeader), msg.Data)
		if err != nil {
			continue
		}
		var found *Record
		_, _ = decodeRecords(data, func(r *Record) {
			if r.ID == id {
				rc := *r
				found = &rc // later lines are newer
			}
		})
		if found != nil {
			return found.invocation(), nil
		}
	}
	return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q in the usage records (kept for %s)", id, m.cfg.Retention)
}

// invocation is the record as the domain's invocation record.
func (r *Record) invocation() *gust.Invocation {
	return &gust.Invocation{
		ID: r.ID, Function: r.Function, Version: r.Version, Trigger: r.Trigger, Start: r.Start,
		Duration: time.Duration(r.DurationUs) * time.Microsecond, MemoryMB: r.MemoryMB, Cold: r.Cold,
		Status: r.Status, Error: r.Error, HTTPCode: r.HTTPStatus,
		// A throttled call and one no instance ran bill nothing.
		NotRun: r.Status != gust.StatusThrottled && r.BilledMs == 0,
	}
}

// validID is the gateway's rule for an invocation id (1 to 64 letters,
// digits, '_' or '-'); meter does not import the gateway.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
