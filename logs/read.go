package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// Query selects log entries.
type Query struct {
	Function   string
	Invocation string    // "" for all
	Since      time.Time // zero: from the start of retention
	Limit      int       // most entries for a non-following query (default 1000, newest kept)
}

// DefaultLimit and MaxLimit bound a non-following query.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// Read calls fn for each stored entry matching q, oldest first; if follow
// is set it then keeps calling fn for new entries until ctx ends.
// Without follow only the newest q.Limit entries are delivered.
//
// Messages are batches, published up to a flush interval after their
// lines were written, so the backlog is put back in the order the lines
// were written (by time; lines of one batch keep their order), and lines
// older than q.Since are left out even when their batch is newer. A query
// for one invocation reads that invocation's subject and its function's
// shared one, whose batches it filters. Followed lines come batch by batch
// as they are stored.
func (s *Store) Read(ctx context.Context, q Query, follow bool, fn func(Entry) error) error {
	if err := gust.ValidateName(q.Function); err != nil {
		return err
	}
	filter := []string{SubjectPrefix + q.Function + ".*"}
	shared := sharedSubject(q.Function)
	if q.Invocation != "" {
		if !validToken(q.Invocation) {
			return gust.Errorf(gust.EINVALID, "invalid invocation id %q", q.Invocation)
		}
		filter = []string{subject(q.Function, q.Invocation), shared}
	}
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	// Only a shared batch holds lines of other invocations.
	each := func(msg jetstream.Msg, fn func(Entry) error) error {
		inv := ""
		if q.Invocation != "" && msg.Subject() == shared {
			inv = q.Invocation
		}
		return eachEntry(msg.Data(), q.Since, inv, fn)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filter}
	if !q.Since.IsZero() {
		since := q.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := s.js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return fmt.Errorf("reading logs: %w", err)
	}
	// The backlog: keep the newest Limit entries.
	var ring []Entry
	next := 0
	keep := func(e Entry) error {
		if len(ring) < q.Limit {
			ring = append(ring, e)
		} else {
			ring[next] = e
			next = (next + 1) % q.Limit
		}
		return nil
	}
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return fmt.Errorf("reading logs: %w", err)
		}
		n, pending := 0, uint64(0)
		for msg := range batch.Messages() {
			n++
			if md, err := msg.Metadata(); err == nil {
				pending = md.NumPending
			}
			_ = each(msg, keep)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("reading logs: %w", err)
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	backlog := make([]Entry, 0, len(ring))
	backlog = append(append(backlog, ring[next:]...), ring[:next]...)
	slices.SortStableFunc(backlog, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	for _, e := range backlog {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	for {
		msgs, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("following logs: %w", err)
		}
		for msg := range msgs.Messages() {
			if err := each(msg, fn); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// eachEntry calls fn for each entry of a batch not older than since and,
// unless inv is "", of invocation inv. A batch that does not parse is
// skipped from where it stops parsing; so is a line of an NDJSON batch.
func eachEntry(data []byte, since time.Time, inv string, fn func(Entry) error) error {
	// Most shared batches of a busy function lack the one invocation
	// asked for: skip them unparsed. ("none" is the subject token of
	// lines without an invocation, which have no id to look for.)
	if inv != "" && inv != "none" && !bytes.Contains(data, []byte(inv)) {
		return nil
	}
	keep := func(e *Entry) bool {
		if !since.IsZero() && e.Time.Before(since) {
			return false
		}
		return inv == "" || e.Invocation == inv || (inv == "none" && e.Invocation == "")
	}
	if bytes.HasPrefix(data, []byte(batchMagic)) {
		err := eachBatchEntry(data, func(e *Entry) error {
			if !keep(e) {
				return nil
			}
			return fn(*e)
		})
		if errors.Is(err, errBadBatch) {
			return nil
		}
		return err
	}
	// An NDJSON batch of older gust: one Entry a line.
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		var e Entry
		if json.Unmarshal(line, &e) != nil || !keep(&e) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Handler serves GET /v1/functions/{name}/logs?since=&invocation=&limit=&follow=
// as newline-delimited JSON entries; with follow=true the response stays
// open and streams new lines as they are written.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		qs := r.URL.Query()
		q := Query{Function: r.PathValue("name"), Invocation: qs.Get("invocation")}
		if v := qs.Get("since"); v != "" {
			t, err := parseSince(v, time.Now())
			if err != nil {
				httperr.Write(w, r, err)
				return
			}
			q.Since = t
		}
		if v := qs.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid limit %q: want a positive number", v))
				return
			}
			q.Limit = n
		}
		follow := qs.Get("follow") == "true" || qs.Get("follow") == "1"
		if err := gust.ValidateName(q.Function); err != nil {
			httperr.Write(w, r, err)
			return
		}
		if !follow {
			fctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			_ = s.Flush(fctx)
			cancel()
		}
		if q.Invocation != "" && !validToken(q.Invocation) {
			httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid invocation id %q", q.Invocation))
			return
		}
		if err := s.known(r.Context(), q.Function); err != nil {
			httperr.Write(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		flusher, _ := w.(http.Flusher)
		if follow && flusher != nil {
			// A follower waits for lines that may be minutes away: send the
			// headers now so the client knows the stream is open.
			w.WriteHeader(http.StatusOK)
			flusher.Flush()
		}
		enc := json.NewEncoder(w)
		wrote := false
		err := s.Read(r.Context(), q, follow, func(e Entry) error {
			wrote = true
			if err := enc.Encode(e); err != nil {
				return err
			}
			if follow && flusher != nil {
				flusher.Flush()
			}
			return nil
		})
		if err != nil && !wrote {
			httperr.Write(w, r, err)
			return
		}
		if err != nil {
			s.log.Debug("log stream ended", "err", err)
		}
	})
}

// known returns ENOTFOUND for a function that does not exist and has no
// lines stored. The lines of a deleted function stay readable for as long
// as the stream keeps them; a function that exists but never wrote a line
// has an empty log.
func (s *Store) known(ctx context.Context, function string) error {
	if s.cfg.Functions == nil {
		return nil
	}
	_, err := s.cfg.Functions.Function(ctx, function)
	if gust.ErrorCode(err) != gust.ENOTFOUND {
		// It exists, or the registry cannot say: the log can.
		return nil
	}
	_, err = s.stream.GetLastMsgForSubject(ctx, SubjectPrefix+function+".*")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return gust.Errorf(gust.ENOTFOUND, "function %q not found, and no logs of it are stored", function)
	}
	if err != nil {
		return fmt.Errorf("looking for logs of %s: %w", function, err)
	}
	return nil
}

func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, gust.Errorf(gust.EINVALID, "invalid since %q: want an RFC 3339 time or a duration such as 10m", v)
	}
	return now.Add(-d), nil
}
