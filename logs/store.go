package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/httperr"
)

// Stream layout: one subject per function and invocation, so a query for
// one invocation is a subject filter, not a scan.
const (
	StreamName    = "GUST_LOGS"
	SubjectPrefix = "gust.logs."
	// StreamGust marks platform events (cold start, timeout, throttle ...)
	// among a function's stdout and stderr lines.
	StreamGust = "gust"

	DefaultRetention = 7 * 24 * time.Hour
	DefaultMaxBytes  = 1 << 30
	bufferSize       = 16 << 10
)

// Entry is one log line.
type Entry struct {
	Time       time.Time `json:"time"`
	Function   string    `json:"function"`
	Version    int       `json:"version"`
	Invocation string    `json:"invocation,omitempty"`
	Stream     string    `json:"stream"` // stdout, stderr or gust
	Message    string    `json:"message"`
}

// StoreConfig configures a Store.
type StoreConfig struct {
	Replicas  int
	Retention time.Duration // default DefaultRetention
	MaxBytes  int64         // default DefaultMaxBytes
	// Echo, if set, also receives every line (gust's own log, at Debug).
	Echo   *slog.Logger
	Logger *slog.Logger
}

// Store keeps function logs in a JetStream stream. It implements
// gust.LogSink; writes never block the function: lines go through a
// bounded buffer and are published asynchronously (a full buffer drops
// lines and counts them, logged once a second at most).
type Store struct {
	cfg     StoreConfig
	js      jetstream.JetStream
	log     *slog.Logger
	ch      chan Entry
	done    chan struct{}
	closed  atomic.Bool
	dropped atomic.Uint64
	wg      sync.WaitGroup
	nowFn   func() time.Time
}

// NewStore creates (or updates) the log stream and starts the publisher.
func NewStore(ctx context.Context, js jetstream.JetStream, cfg StoreConfig) (*Store, error) {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	_, err := broker.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:      StreamName,
		Subjects:  []string{SubjectPrefix + ">"},
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
		Discard:   jetstream.DiscardOld,
		MaxAge:    cfg.Retention,
		MaxBytes:  cfg.MaxBytes,
		Replicas:  cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("log stream: %w", err)
	}
	s := &Store{cfg: cfg, js: js, log: cfg.Logger, ch: make(chan Entry, bufferSize), done: make(chan struct{}), nowFn: time.Now}
	s.wg.Add(1)
	go s.publishLoop()
	return s, nil
}

func subject(function, invocation string) string {
	if invocation == "" {
		invocation = "none"
	}
	return SubjectPrefix + function + "." + invocation
}

// FunctionLog implements gust.LogSink: each line of p becomes an entry.
func (s *Store) FunctionLog(function string, version int, invocationID, stream string, p []byte) {
	now := s.nowFn()
	splitLines(p, func(line string) {
		s.put(Entry{Time: now, Function: function, Version: version, Invocation: invocationID, Stream: stream, Message: line})
	})
}

// Event records a platform event about an invocation.
func (s *Store) Event(function string, version int, invocationID, format string, args ...any) {
	s.put(Entry{Time: s.nowFn(), Function: function, Version: version, Invocation: invocationID,
		Stream: StreamGust, Message: fmt.Sprintf(format, args...)})
}

func (s *Store) put(e Entry) {
	if s.closed.Load() {
		return
	}
	if s.cfg.Echo != nil {
		s.cfg.Echo.Debug(e.Message, "function", e.Function, "version", e.Version, "invocation", e.Invocation, "stream", e.Stream)
	}
	select {
	case s.ch <- e:
	default:
		if s.dropped.Add(1)%1000 == 1 {
			s.log.Warn("function log buffer full; dropping lines", "dropped", s.dropped.Load())
		}
	}
}

func (s *Store) publishLoop() {
	defer s.wg.Done()
	pending := 0
	flush := func() {
		if pending == 0 {
			return
		}
		select {
		case <-s.js.PublishAsyncComplete():
		case <-time.After(5 * time.Second):
			s.log.Warn("function log publish acks are late")
		}
		pending = 0
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e := <-s.ch:
			s.publish(e)
			pending++
			if pending >= 1000 {
				flush()
			}
		case <-tick.C:
			flush()
		case <-s.done:
			for {
				select {
				case e := <-s.ch:
					s.publish(e)
					pending++
				default:
					flush()
					return
				}
			}
		}
	}
}

func (s *Store) publish(e Entry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	msg := &nats.Msg{Subject: subject(e.Function, e.Invocation), Data: b}
	if _, err := s.js.PublishMsgAsync(msg); err != nil {
		s.log.Warn("publishing a function log line", "err", err)
	}
}

// Flush waits until every line written so far is stored (bounded by ctx).
func (s *Store) Flush(ctx context.Context) error {
	for len(s.ch) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	select {
	case <-s.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close publishes what is buffered and stops.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	close(s.done)
	s.wg.Wait()
}

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
func (s *Store) Read(ctx context.Context, q Query, follow bool, fn func(Entry) error) error {
	if err := gust.ValidateName(q.Function); err != nil {
		return err
	}
	inv := "*"
	if q.Invocation != "" {
		if !validToken(q.Invocation) {
			return gust.Errorf(gust.EINVALID, "invalid invocation id %q", q.Invocation)
		}
		inv = q.Invocation
	}
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectPrefix + q.Function + "." + inv}}
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
			var e Entry
			if json.Unmarshal(msg.Data(), &e) != nil {
				continue
			}
			if len(ring) < q.Limit {
				ring = append(ring, e)
			} else {
				ring[next] = e
				next = (next + 1) % q.Limit
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("reading logs: %w", err)
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	for i := range ring {
		if err := fn(ring[(next+i)%len(ring)]); err != nil {
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
			var e Entry
			if json.Unmarshal(msg.Data(), &e) == nil {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
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

// splitLines calls fn for each non-empty line of p, cut at MaxLine with
// TruncatedMarker.
func splitLines(p []byte, fn func(string)) {
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		for len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			continue
		}
		if len(line) > MaxLine {
			fn(string(line[:MaxLine]) + TruncatedMarker)
			continue
		}
		fn(string(line))
	}
}
