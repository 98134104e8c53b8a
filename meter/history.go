package meter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// History limits: a query returns at most MaxHistory records and scans at
// most about maxHistoryScan records, so a wide query stays cheap.
const (
	DefaultHistory = 100
	MaxHistory     = 1000
	maxHistoryScan = 200_000
	// historyFetch is how many messages one fetch asks for; a message
	// holds up to maxMsgRecords records.
	historyFetch = 64
)

// HistoryQuery selects invocation records.
type HistoryQuery struct {
	Function string    // "" for all functions
	Status   string    // "" for any; else ok, error, timeout, throttled, oom
	Since    time.Time // oldest start time to consider
	Limit    int       // most records returned (default DefaultHistory)
}

// Invocations returns the most recent records matching q, newest first,
// read from the usage stream (records are kept for Config.Retention).
func (m *Meter) Invocations(ctx context.Context, q HistoryQuery) ([]Record, error) {
	if q.Function != "" {
		if err := gust.ValidateName(q.Function); err != nil {
			return nil, err
		}
	}
	switch q.Status {
	case "", gust.StatusOK, gust.StatusError, gust.StatusTimeout, gust.StatusThrottled, gust.StatusOOM:
	default:
		return nil, gust.Errorf(gust.EINVALID, "invalid status %q: want ok, error, timeout, throttled or oom", q.Status)
	}
	if q.Limit <= 0 {
		q.Limit = DefaultHistory
	}
	if q.Limit > MaxHistory {
		q.Limit = MaxHistory
	}
	filter := SubjectPrefix + ">"
	if q.Function != "" {
		filter = subjectFor(q.Function)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !q.Since.IsZero() {
		since := q.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := m.js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("reading invocation history: %w", err)
	}
	// A ring of the last Limit matches: the stream is oldest first, and
	// so are the records within a message.
	ring := make([]Record, 0, q.Limit)
	next := 0
	keep := func(r *Record) {
		if q.Status != "" && r.Status != q.Status {
			return
		}
		// A message is published after its records started, so the
		// stream's start time selects a superset; this is exact.
		if !q.Since.IsZero() && r.Start.Before(q.Since) {
			return
		}
		if len(ring) < q.Limit {
			ring = append(ring, *r)
		} else {
			ring[next] = *r
			next = (next + 1) % q.Limit
		}
	}
	for scanned := 0; scanned < maxHistoryScan; {
		batch, err := cons.FetchNoWait(historyFetch)
		if err != nil {
			return nil, fmt.Errorf("reading invocation history: %w", err)
		}
		n, pending := 0, uint64(0)
		for msg := range batch.Messages() {
			n++
			if md, err := msg.Metadata(); err == nil {
				pending = md.NumPending
			}
			recs := 0
			data, err := messageRecords(msg.Headers().Get(encodingHeader), msg.Data())
			if err != nil {
				m.log.Warn("unreadable usage message skipped in history", "subject", msg.Subject(), "err", err)
			}
			_, _ = decodeRecords(data, func(r *Record) {
				recs++
				keep(r)
			})
			scanned += max(recs, 1)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("reading invocation history: %w", err)
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	out := make([]Record, 0, len(ring))
	for i := len(ring) - 1; i >= 0; i-- {
		out = append(out, ring[(next+i)%len(ring)])
	}
	return out, nil
}

// HistoryHandler serves GET /v1/invocations?function=&status=&since=&limit=
// as {"invocations": [Record...]}, newest first. since is an RFC 3339 time
// or a duration ago (default 24h).
func (m *Meter) HistoryHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		qs := r.URL.Query()
		now := time.Now()
		since, err := ParseTime(qs.Get("since"), now, now.Add(-24*time.Hour))
		if err != nil {
			httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid since: %s", gust.ErrorMessage(err)))
			return
		}
		limit := 0
		if s := qs.Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || limit < 1 {
				httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid limit %q: want a positive number", s))
				return
			}
		}
		fctx, cancel := context.WithTimeout(r.Context(), flushBeforeReport)
		_ = m.Flush(fctx)
		cancel()
		recs, err := m.Invocations(r.Context(), HistoryQuery{
			Function: qs.Get("function"), Status: qs.Get("status"), Since: since, Limit: limit,
		})
		if err != nil {
			httperr.Write(w, r, err)
			return
		}
		httperr.WriteJSON(w, http.StatusOK, map[string]any{"invocations": recs})
	})
}
