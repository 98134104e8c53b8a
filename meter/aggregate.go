package meter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
)

// hourKeyFormat is the UTC hour in aggregate keys: FUNCTION.YYYYMMDDHH.
const hourKeyFormat = "2006010215"

// msgSizeHeader gives the size of a message delivered headers only.
const msgSizeHeader = "Nats-Msg-Size"

// pinIDHeader carries the consumer pin on messages to the pinned client.
const pinIDHeader = "Nats-Pin-Id"

// maxUpdateAttempts bounds optimistic-concurrency retries of one key.
const maxUpdateAttempts = 20

// aggregate is the stored value of one hour bucket. It counts MB·ms as an
// integer (GB-s are derived when reporting) and remembers the last stream
// sequence it applied, which makes applying a redelivered record a no-op.
type aggregate struct {
	Function    string    `json:"function"`
	Hour        time.Time `json:"hour"`
	Invocations int64     `json:"invocations"`
	Errors      int64     `json:"errors"`
	Throttles   int64     `json:"throttles"`
	ColdStarts  int64     `json:"coldStarts"`
	BilledMs    int64     `json:"billedMs"`
	MBMs        int64     `json:"mbMs"`
	DurationUs  int64     `json:"durationUs"`
	LastSeq     uint64    `json:"lastSeq"`
}

func (a *aggregate) add(r *Record) {
	if r.Status == gust.StatusThrottled {
		a.Throttles++
		return
	}
	a.Invocations++
	switch r.Status {
	case gust.StatusError, gust.StatusTimeout, gust.StatusOOM:
		a.Errors++
	}
	if r.Cold {
		a.ColdStarts++
	}
	a.BilledMs += r.BilledMs
	a.MBMs += r.BilledMs * int64(r.MemoryMB)
	a.DurationUs += r.DurationUs
}

// merge adds the counts of d (a delta with no identity of its own).
func (a *aggregate) merge(d *aggregate) {
	a.Invocations += d.Invocations
	a.Errors += d.Errors
	a.Throttles += d.Throttles
	a.ColdStarts += d.ColdStarts
	a.BilledMs += d.BilledMs
	a.MBMs += d.MBMs
	a.DurationUs += d.DurationUs
}

func hourKey(function string, hour time.Time) string {
	return token(function) + "." + hour.UTC().Format(hourKeyFormat)
}

// seqDelta is what the records of one stream message add to one bucket.
type seqDelta struct {
	seq   uint64
	delta aggregate
}

type bucketDelta struct {
	function string
	hour     time.Time
	parts    []seqDelta // in stream order
}

// startAggregator subscribes to the shared consumer. Messages reach one
// goroutine in stream order; it folds whatever has arrived (up to a batch)
// into the bucket aggregates, then acks the batch.
func (m *Meter) startAggregator(ctx context.Context) error {
	in := make(chan jetstream.Msg, 4*fetchBatch)
	cc, err := m.cons.Consume(func(msg jetstream.Msg) {
		if id := msg.Headers().Get(pinIDHeader); id != "" {
			m.pinMu.Lock()
			m.pinID = id
			m.pinMu.Unlock()
		}
		// Holding handMu while blocked on in cannot deadlock: giveBack
		// takes it only after ctx is done, which unblocks the select.
		m.handMu.Lock()
		defer m.handMu.Unlock()
		if m.handStopped {
			_ = msg.Nak()
			return
		}
		// Once closing, every later message is a straggler: a select
		// alone could pick in after a straggler and apply a record out
		// of order.
		if ctx.Err() != nil {
			m.stragglers = append(m.stragglers, msg)
			return
		}
		select {
		case in <- msg:
		case <-ctx.Done():
			m.stragglers = append(m.stragglers, msg)
		}
	},
		jetstream.PullMaxMessages(fetchBatch),
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullPriorityGroup(priorityGroup),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if ctx.Err() == nil {
				m.log.Debug("usage consumer", "err", err)
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("consume usage records: %w", err)
	}
	go m.aggregateLoop(ctx, cc, in)
	return nil
}

func (m *Meter) aggregateLoop(ctx context.Context, cc jetstream.ConsumeContext, in chan jetstream.Msg) {
	defer close(m.aggDone)
	batch := make([]jetstream.Msg, 0, fetchBatch)
	for {
		batch = batch[:0]
		// Closing wins over more work, so nothing is applied after the
		// first record is handed back.
		if ctx.Err() != nil {
			m.giveBack(cc, nil, in)
			return
		}
		select {
		case msg := <-in:
			batch = append(batch, msg)
		case <-ctx.Done():
			m.giveBack(cc, nil, in)
			return
		}
	fill:
		for len(batch) < fetchBatch {
			select {
			case msg := <-in:
				batch = append(batch, msg)
			default:
				break fill
			}
		}
		// Retry in place: letting later records through before these
		// would make the last-sequence check skip them.
		wait := 100 * time.Millisecond
		for {
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := m.apply(actx, batch)
			if err == nil {
				// AckAll: acking the last acks the batch.
				if err := batch[len(batch)-1].DoubleAck(actx); err != nil {
					m.log.Warn("acking usage records; their redelivery will be skipped", "err", err)
				}
				cancel()
				break
			}
			cancel()
			m.log.Warn("aggregating usage records; retrying", "count", len(batch), "err", err)
			sleep(ctx, wait)
			wait = min(2*wait, 5*time.Second)
			if ctx.Err() != nil {
				m.giveBack(cc, batch, in)
				return
			}
		}
	}
}

// giveBack stops consuming and naks what this node holds but did not
// apply, lowest sequence first: redeliveries go out before newer records,
// so the next aggregator still applies records in stream order.
func (m *Meter) giveBack(cc jetstream.ConsumeContext, held []jetstream.Msg, in chan jetstream.Msg) {
	cc.Stop()
	m.handMu.Lock()
	m.handStopped = true
	held = append(held, m.stragglers...)
	m.stragglers = nil
	for len(in) > 0 {
		held = append(held, <-in)
	}
	m.handMu.Unlock()
	sort.SliceStable(held, func(i, j int) bool { return streamSeq(held[i]) < streamSeq(held[j]) })
	for _, msg := range held {
		_ = msg.Nak()
	}
}

func streamSeq(msg jetstream.Msg) uint64 {
	if md, err := msg.Metadata(); err == nil {
		return md.Sequence.Stream
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// apply folds msgs into their hour buckets, one KV write per bucket. A
// message's records may fall into several buckets (an hour boundary within
// a flush); each bucket gets the message's share and its sequence.
func (m *Meter) apply(ctx context.Context, msgs []jetstream.Msg) error {
	type bucket struct {
		function string
		hour     int64 // Unix seconds
	}
	deltas := map[bucket]*bucketDelta{}
	part := func(function string, hour time.Time, seq uint64) *aggregate {
		b := bucket{function, hour.Unix()}
		d := deltas[b]
		if d == nil {
			d = &bucketDelta{function: function, hour: hour}
			deltas[b] = d
		}
		if n := len(d.parts); n == 0 || d.parts[n-1].seq != seq {
			d.parts = append(d.parts, seqDelta{seq: seq})
		}
		return &d.parts[len(d.parts)-1].delta
	}
	for _, msg := range msgs {
		md, err := msg.Metadata()
		if err != nil {
			m.log.Warn("usage message without metadata skipped", "subject", msg.Subject(), "err", err)
			continue
		}
		seq := md.Sequence.Stream
		if function, sums, ok := summary(msg); ok {
			for i := range sums {
				part(function, time.Unix(sums[i].hour, 0).UTC(), seq).merge(&sums[i].agg)
			}
			continue
		}
		data, encoding := msg.Data(), msg.Headers().Get(encodingHeader)
		if len(data) == 0 && msg.Headers().Get(msgSizeHeader) != "0" {
			// Delivered headers only and no summary: fetch the records.
			raw, err := m.stream.GetMsg(ctx, seq)
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					m.log.Warn("usage message gone before it was aggregated", "seq", seq)
					continue
				}
				return fmt.Errorf("read usage message %d: %w", seq, err)
			}
			data, encoding = raw.Data, raw.Header.Get(encodingHeader)
		}
		data, err = messageRecords(encoding, data)
		if err != nil {
			m.log.Warn("unreadable usage message skipped", "seq", seq, "err", err)
			continue
		}
		bad, err := decodeRecords(data, func(r *Record) {
			start := r.Start
			if start.IsZero() {
				start = md.Timestamp
			}
			part(r.Function, start.UTC().Truncate(time.Hour), seq).add(r)
		})
		if bad > 0 {
			m.log.Warn("malformed usage records skipped", "seq", seq, "count", bad, "err", err)
		}
	}
	// Redeliveries can put an older message after a newer one; apply in
	// stream order so the last-sequence check is exact.
	byKey := make(map[string]*bucketDelta, len(deltas))
	keys := make([]string, 0, len(deltas))
	for _, d := range deltas {
		sort.SliceStable(d.parts, func(i, j int) bool { return d.parts[i].seq < d.parts[j].seq })
		k := hourKey(d.function, d.hour)
		if prev := byKey[k]; prev != nil {
			// Two invalid names share the "_" key: one bucket, in order.
			prev.parts = append(prev.parts, d.parts...)
			sort.SliceStable(prev.parts, func(i, j int) bool { return prev.parts[i].seq < prev.parts[j].seq })
			continue
		}
		byKey[k] = d
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := m.applyBucket(ctx, k, byKey[k]); err != nil {
			return err
		}
	}
	return nil
}

func (m *Meter) applyBucket(ctx context.Context, key string, d *bucketDelta) error {
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		var (
			agg aggregate
			rev uint64
		)
		entry, err := m.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			agg = aggregate{Function: d.function, Hour: d.hour}
		case err != nil:
			return fmt.Errorf("read usage aggregate %s: %w", key, err)
		default:
			if err := json.Unmarshal(entry.Value(), &agg); err != nil {
				return fmt.Errorf("decode usage aggregate %s: %w", key, err)
			}
			rev = entry.Revision()
		}
		applied := 0
		for i := range d.parts {
			p := &d.parts[i]
			if p.seq <= agg.LastSeq {
				continue // redelivered: already counted
			}
			agg.merge(&p.delta)
			agg.LastSeq = p.seq
			applied++
		}
		if applied == 0 {
			return nil
		}
		val, err := json.Marshal(&agg)
		if err != nil {
			return fmt.Errorf("encode usage aggregate %s: %w", key, err)
		}
		if rev == 0 {
			_, err = m.kv.Create(ctx, key, val)
		} else {
			_, err = m.kv.Update(ctx, key, val, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("write usage aggregate %s: %w", key, err)
		}
		// Another writer won; read again and re-apply what is still new.
	}
	return gust.Errorf(gust.ECONFLICT, "usage aggregate %s: too many concurrent updates", key)
}

// summary returns the function and per-hour summary a message carries in
// its sumHeader; ok is false for a message to decode instead.
func summary(msg jetstream.Msg) (function string, sums []hourSum, ok bool) {
	v := msg.Headers().Get(sumHeader)
	if v == "" {
		return "", nil, false
	}
	function, found := strings.CutPrefix(msg.Subject(), SubjectPrefix)
	if !found || token(function) != function {
		return "", nil, false
	}
	sums, ok = parseSums(v)
	return function, sums, ok
}

// sumHeader carries a usage message's per-hour summary, written by the
// publisher from the records it encodes: "1;HOUR,INVOCATIONS,ERRORS,
// THROTTLES,COLD,BILLEDMS,MBMS,DURATIONUS;HOUR,..." with HOUR in Unix
// seconds. The aggregator folds it in instead of decoding every record;
// a message without it (or with one it cannot read) is decoded.
const sumHeader = "Gust-Usage-Sum"

func formatSums(sums []hourSum) string {
	b := make([]byte, 0, 64*len(sums))
	b = append(b, '1')
	for i := range sums {
		s := &sums[i]
		for j, v := range [...]int64{s.hour, s.agg.Invocations, s.agg.Errors, s.agg.Throttles, s.agg.ColdStarts, s.agg.BilledMs, s.agg.MBMs, s.agg.DurationUs} {
			if j == 0 {
				b = append(b, ';')
			} else {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, v, 10)
		}
	}
	return string(b)
}

// parseSums reads a sumHeader value; ok is false unless it is well formed
// and plausible (whole hours, no negative counts).
func parseSums(v string) (sums []hourSum, ok bool) {
	parts := strings.Split(v, ";")
	if len(parts) < 2 || parts[0] != "1" {
		return nil, false
	}
	for _, p := range parts[1:] {
		f := strings.Split(p, ",")
		if len(f) != 8 {
			return nil, false
		}
		var n [8]int64
		for i, s := range f {
			x, err := strconv.ParseInt(s, 10, 64)
			if err != nil || (i > 0 && x < 0) {
				return nil, false
			}
			n[i] = x
		}
		if floorHour(n[0]) != n[0] {
			return nil, false
		}
		sums = append(sums, hourSum{hour: n[0], agg: aggregate{
			Invocations: n[1], Errors: n[2], Throttles: n[3], ColdStarts: n[4],
			BilledMs: n[5], MBMs: n[6], DurationUs: n[7],
		}})
	}
	return sums, true
}
