package meter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/gateway"
)

// maxLookupMessages bounds the usage messages one Invocation reads, newest
// first: an id a caller was just given is in the last few, and one that is
// not there at all costs a bounded read (each message holds up to
// maxMsgRecords records).
const maxLookupMessages = 2000

// lookupNewest is how many of the newest messages Invocation reads one by
// one before it streams the rest of its window in batches of lookupBatch.
const (
	lookupNewest = 32
	lookupBatch  = 256
)

// maxErrorBytes bounds the error message a record keeps.
const maxErrorBytes = 1024

// Invocation returns the record of invocation id, read from the usage
// stream newest first (records are kept for Config.Retention; the newest
// maxLookupMessages messages are searched): the newest record of id, so
// the last attempt of an invocation run more than once. Records this node
// still buffers are flushed first. Errors: ENOTFOUND.
func (m *Meter) Invocation(ctx context.Context, id string) (*gust.Invocation, error) {
	if !gateway.ClientInvocationID(id) {
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
	if last == 0 || last < first {
		return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q in the usage records (kept for %s)", id, m.cfg.Retention)
	}
	quoted := []byte(`"` + id + `"`) // validID: nothing in it is escaped in JSON
	find := func(hdr string, payload []byte) *Record {
		data, err := messageRecords(hdr, payload)
		// Most messages do not hold the id: finding that in the bytes
		// costs far less than decoding each of their records.
		if err != nil || !bytes.Contains(data, quoted) {
			return nil
		}
		var found *Record
		_, _ = decodeRecords(data, func(r *Record) {
			if r.ID == id {
				rc := *r
				found = &rc // later lines are newer
			}
		})
		return found
	}
	// An id a caller was just given is in the newest few messages: read
	// those one by one, newest first.
	seq := last
	for ; seq >= first && last-seq < lookupNewest; seq-- {
		msg, err := m.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed by age or limits meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("finding invocation %s: %w", id, err)
		}
		if r := find(msg.Header.Get(encodingHeader), msg.Data); r != nil {
			return r.invocation(), nil
		}
	}
	if seq < first {
		return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q in the usage records (kept for %s)", id, m.cfg.Retention)
	}
	// The rest of the window streams through an ordered consumer, oldest
	// first, the newest match winning: one request per batch instead of
	// one per message.
	start := first
	if last >= maxLookupMessages && last-maxLookupMessages+1 > start {
		start = last - maxLookupMessages + 1
	}
	cons, err := m.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	})
	if err != nil {
		return nil, fmt.Errorf("finding invocation %s: %w", id, err)
	}
	var found *Record
	left := int(seq - start + 1) // at most this many; fewer if some were removed
	for done := false; !done && left > 0; {
		// Asking for no more than are left lets Fetch return as soon as
		// they are in, not at its MaxWait.
		batch, err := cons.Fetch(min(left, lookupBatch), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("finding invocation %s: %w", id, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			left--
			meta, err := msg.Metadata()
			if err != nil || meta.Sequence.Stream > seq {
				done = true
				continue
			}
			if r := find(msg.Headers().Get(encodingHeader), msg.Data()); r != nil {
				found = r
			}
			if meta.Sequence.Stream == seq {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("finding invocation %s: %w", id, err)
		}
		if n == 0 {
			done = true // nothing more to read: messages removed meanwhile
		}
	}
	if found != nil {
		return found.invocation(), nil
	}
	return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q in the usage records (kept for %s)", id, m.cfg.Retention)
}

// invocation is the record as the domain's invocation record.
func (r *Record) invocation() *gust.Invocation {
	return &gust.Invocation{
		ID: r.ID, Function: r.Function, Version: r.Version, Trigger: r.Trigger, Start: r.Start,
		Duration: time.Duration(r.DurationUs) * time.Microsecond, MemoryMB: r.MemoryMB, Cold: r.Cold,
		Status: r.Status, Error: r.Error, HTTPCode: r.HTTPStatus,
		// Every call an instance ran bills at least 1 ms; a throttled
		// call and one no instance could be had for bill nothing: neither
		// ran (gust.Invocation.NotRun), and neither started warm or cold.
		NotRun: r.BilledMs == 0,
	}
}
