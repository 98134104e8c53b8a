package logs

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
)

// Stream layout: a message is a batch of lines (the format is in
// encode.go). Its subject is gust.logs.FUNCTION.INVOCATION when the lines are
// of one invocation ("none" for an instance's start-up), so a query for
// one invocation is a subject filter, not a scan; lines of several sparse
// invocations of a function share gust.logs.FUNCTION.~shared, which such
// a query also reads and filters. (Messages of older gust, an NDJSON
// batch or a single JSON Entry, still read.)
const (
	StreamName    = "GUST_LOGS"
	SubjectPrefix = "gust.logs."
	SharedToken   = "~shared"
	// StreamGust marks platform events (cold start, timeout, throttle ...)
	// among a function's stdout and stderr lines.
	StreamGust = "gust"

	DefaultRetention = 7 * 24 * time.Hour
	DefaultMaxBytes  = 1 << 30
	// DefaultFlushInterval is how long a line may wait in memory: what
	// `gust logs -f` lags behind a running function at most.
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultMaxBuffered bounds the bytes of lines waiting to be published;
	// past it lines are dropped (and counted), never waited for.
	DefaultMaxBuffered = 16 << 20
)

const (
	// flushBytes of buffered lines wake the publisher before the interval
	// ends, so a chatty function makes full messages, not huge bursts.
	flushBytes = 256 << 10
	// maxMsgBytes bounds one batch (the server's max payload may lower it).
	maxMsgBytes = 256 << 10
	// maxInFlight bounds the batches published and not yet acknowledged.
	maxInFlight = 512
	// publishTimeout bounds the wait for one batch's ack, for room in the
	// in-flight window, and for the last acks on Close.
	publishTimeout = 5 * time.Second
	// chunkLen entries make a chunk of the buffer; up to maxFreeChunks
	// emptied chunks are kept for reuse.
	chunkLen      = 256
	maxFreeChunks = 64
	// ownBatchLines lines of an invocation in one flush earn it a message
	// of its own even when other invocations of its function wrote too.
	ownBatchLines = 8
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
	// FlushInterval is the longest a line waits before it is published;
	// default DefaultFlushInterval.
	FlushInterval time.Duration
	// MaxBuffered bounds the bytes of lines waiting to be published;
	// default DefaultMaxBuffered.
	MaxBuffered int
	// Echo, if set, also receives every line (gust's own log, at Debug).
	Echo   *slog.Logger
	Logger *slog.Logger
	// Functions, if set, lets Handler answer 404 for a function that does
	// not exist and has no lines stored, so that a typo does not look like
	// a quiet function; a gust.Registry will do. Without it such a query
	// answers an empty log.
	Functions Functions
}

// Functions finds functions (gust.Registry has this method). Errors:
// ENOTFOUND.
type Functions interface {
	Function(ctx context.Context, name string) (*gust.Function, error)
}

// Store keeps function logs in a JetStream stream. It implements
// gust.LogSink.
//
// Writing costs the function an append under a mutex and nothing more: no
// goroutine is woken per line. A publisher goroutine takes the buffered
// lines every FlushInterval (sooner once flushBytes have gathered), packs
// them into few messages (see publishBatches) and publishes those
// asynchronously, a bounded number in flight. Paying the stream per batch
// rather than per line is what keeps log capture cheap (issue 7). Lines
// that find the buffer full are dropped and counted, and so are lines of
// a batch the stream did not take; Close publishes what is buffered.
type Store struct {
	cfg    StoreConfig
	js     jetstream.JetStream
	pub    jetstream.JetStream // own context: PublishAsyncComplete waits for the store's batches only
	stream jetstream.Stream
	log    *slog.Logger
	nowFn  func() time.Time
	maxMsg int

	mu       sync.Mutex
	buf      [][]Entry // in the order written, in chunks of chunkLen
	bufBytes int
	free     [][]Entry // empty chunks to reuse
	closed   bool

	kick     chan struct{} // cap 1: flushBytes gathered
	flushReq chan chan struct{}
	stop     chan struct{}
	done     chan struct{}

	dropped    atomic.Uint64 // lines that found the buffer full
	lost       atomic.Uint64 // lines whose batch failed to publish
	reported   [2]uint64     // dropped and lost as last logged; publisher only
	closeOnce  sync.Once
	lastReport time.Time

	groups map[string]*fnGroup // by function; publisher only
}

// NewStore creates (or updates) the log stream and starts the publisher.
func NewStore(ctx context.Context, js jetstream.JetStream, cfg StoreConfig) (*Store, error) {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = DefaultMaxBuffered
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	stream, err := broker.EnsureStream(ctx, js, jetstream.StreamConfig{
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
	s := &Store{
		cfg: cfg, js: js, stream: stream, log: cfg.Logger, nowFn: time.Now,
		maxMsg:   maxMessageBytes(js.Conn()),
		groups:   make(map[string]*fnGroup),
		kick:     make(chan struct{}, 1),
		flushReq: make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.pub, err = newPublisher(js, s.publishFailed)
	if err != nil {
		return nil, err
	}
	go s.publishLoop()
	return s, nil
}

// newPublisher makes a JetStream context of the store's own on js's
// connection, addressing the same domain or API prefix.
func newPublisher(js jetstream.JetStream, failed jetstream.MsgErrHandler) (jetstream.JetStream, error) {
	pub, err := broker.NewPublisher(js,
		jetstream.WithPublishAsyncMaxPending(maxInFlight),
		jetstream.WithPublishAsyncTimeout(publishTimeout),
		jetstream.WithPublishAsyncErrHandler(failed),
	)
	if err != nil {
		return nil, fmt.Errorf("log publisher: %w", err)
	}
	return pub, nil
}

// maxMessageBytes keeps a batch, with room for headers, well under the
// server's max payload, whatever it is configured to.
func maxMessageBytes(nc *nats.Conn) int {
	limit := maxMsgBytes
	if mp := nc.MaxPayload(); mp > 0 && int64(limit) > mp/2 {
		limit = int(mp / 2)
	}
	return max(limit-4096, 1024)
}

// sharedSubject holds lines of several invocations of function. Its last
// token is no valid invocation id, so no query names it by mistake.
func sharedSubject(function string) string {
	return SubjectPrefix + function + "." + SharedToken
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
	s.mu.Lock()
	splitLines(p, func(line string) {
		s.putLocked(Entry{Time: now, Function: function, Version: version, Invocation: invocationID, Stream: stream, Message: line})
	})
	s.mu.Unlock()
	if s.echoing() {
		splitLines(p, func(line string) { s.echo(function, version, invocationID, stream, line) })
	}
}

// Event records a platform event about an invocation.
func (s *Store) Event(function string, version int, invocationID, format string, args ...any) {
	e := Entry{Time: s.nowFn(), Function: function, Version: version, Invocation: invocationID,
		Stream: StreamGust, Message: fmt.Sprintf(format, args...)}
	s.mu.Lock()
	s.putLocked(e)
	s.mu.Unlock()
	if s.echoing() {
		s.echo(function, version, invocationID, StreamGust, e.Message)
	}
}

// echoing is asked first so that a quiet gust log costs a line nothing.
func (s *Store) echoing() bool {
	return s.cfg.Echo != nil && s.cfg.Echo.Enabled(context.Background(), slog.LevelDebug)
}

func (s *Store) echo(function string, version int, invocationID, stream, line string) {
	s.cfg.Echo.Debug(line, "function", function, "version", version, "invocation", invocationID, "stream", stream)
}

// entryOverhead approximates what a buffered line holds besides its
// message: the Entry and the invocation id.
const entryOverhead = 160

func (s *Store) putLocked(e Entry) {
	if s.closed {
		return
	}
	n := len(e.Message) + len(e.Function) + entryOverhead
	if s.bufBytes+n > s.cfg.MaxBuffered {
		s.dropped.Add(1)
		return
	}
	last := len(s.buf) - 1
	if last < 0 || len(s.buf[last]) == chunkLen {
		// Chunks, not one growing slice: a writer never waits for a
		// large buffer to be copied.
		var c []Entry
		if k := len(s.free); k > 0 {
			c, s.free = s.free[k-1], s.free[:k-1]
		} else {
			c = make([]Entry, 0, chunkLen)
		}
		s.buf = append(s.buf, c)
		last++
	}
	s.buf[last] = append(s.buf[last], e)
	s.bufBytes += n
	if s.bufBytes >= flushBytes && s.bufBytes-n < flushBytes {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Store) publishLoop() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.flush()
		case <-s.kick:
			s.flush()
		case req := <-s.flushReq:
			s.flush()
			close(req)
		case <-s.stop:
			s.flush()
			select {
			case <-s.pub.PublishAsyncComplete():
			case <-time.After(publishTimeout):
				s.log.Warn("function log batches were not all acknowledged before close",
					"pending", s.pub.PublishAsyncPending())
			}
			s.report(true)
			return
		}
	}
}

// flush publishes the buffered lines and recycles their chunks. Only the
// publisher calls it.
func (s *Store) flush() {
	s.mu.Lock()
	chunks := s.buf
	s.buf = nil
	s.bufBytes = 0
	s.mu.Unlock()
	if len(chunks) > 0 {
		s.publishBatches(chunks)
	}
	for _, c := range chunks {
		clear(c) // let the messages go
	}
	s.mu.Lock()
	for _, c := range chunks {
		if len(s.free) < maxFreeChunks {
			s.free = append(s.free, c[:0])
		}
	}
	s.mu.Unlock()
	s.report(false)
}

type batch struct {
	subject string
	data    []byte
	lines   int
	prev    int64 // time of the last entry in data
}

// publishFlush publishes the batches of one flush. After a batch fails to
// go out (the in-flight window stayed full, or the connection is closed)
// the rest of the flush is counted lost at once, so that a flush, and so
// Close, waits for a stalled server once at most.
type publishFlush struct {
	s      *Store
	failed bool
}

func (p *publishFlush) publish(b *batch) {
	if p.failed {
		p.s.lost.Add(uint64(b.lines))
		return
	}
	msg := &nats.Msg{Subject: b.subject, Data: b.data}
	if _, err := p.s.pub.PublishMsgAsync(msg, jetstream.WithStallWait(publishTimeout)); err != nil {
		p.failed = true
		p.s.lost.Add(uint64(b.lines))
		p.s.log.Debug("publishing a function log batch", "subject", b.subject, "err", err)
	}
}

// fnGroup is one function's lines in a flush: how many each invocation
// wrote, and the batches being built. Groups and their maps live from
// flush to flush (the publisher's alone), so a flush allocates little
// more than its batches.
type fnGroup struct {
	used   bool
	inv    map[string]int32 // invocation id -> index in stats
	stats  []invStat
	bytes  int    // bound of the function's lines encoded
	shared *batch // lines of sparse invocations
}

type invStat struct {
	lines, bytes int
	own          *batch // the batch of an invocation with a subject of its own
}

// groupOf returns function's group, ready for this flush.
func (s *Store) groupOf(function string) *fnGroup {
	g := s.groups[function]
	if g == nil {
		g = &fnGroup{inv: make(map[string]int32)}
		s.groups[function] = g
	}
	if !g.used {
		g.used = true
		clear(g.inv)
		clear(g.stats) // drop the last flush's batches
		g.stats, g.bytes, g.shared = g.stats[:0], 0, nil
	}
	return g
}

// publishBatches publishes one flush's lines. Each invocation's lines go
// to its own subject when they are many or the only ones of their
// function; otherwise the lines of a function's sparse invocations share
// one message on its shared subject. A message costs the stream far more
// than a line (≈ 20 µs of CPU against ≈ 1 µs), so a busy function whose
// invocations write a line or two each is stored in a few messages a
// second, not one per invocation; a chatty invocation keeps messages of
// its own, found by subject.
func (s *Store) publishBatches(chunks [][]Entry) {
	// First pass: lines and bytes of each invocation. Consecutive lines
	// are mostly of one function, so its group is looked up once a run.
	var g *fnGroup
	fn := ""
	for _, c := range chunks {
		for i := range c {
			e := &c[i]
			if g == nil || e.Function != fn {
				g, fn = s.groupOf(e.Function), e.Function
			}
			k, ok := g.inv[e.Invocation]
			if !ok {
				k = int32(len(g.stats))
				g.inv[e.Invocation] = k
				g.stats = append(g.stats, invStat{})
			}
			sz := batchEntrySize(e)
			g.stats[k].lines++
			g.stats[k].bytes += sz
			g.bytes += sz
		}
	}
	// Second pass: encode the lines into their batches, in the order
	// written, and publish the batches in the order of their first line.
	pf := &publishFlush{s: s}
	var order []*batch
	g, fn = nil, ""
	for _, c := range chunks {
		for i := range c {
			e := &c[i]
			if g == nil || e.Function != fn {
				g, fn = s.groups[e.Function], e.Function
			}
			if !storableTime(e.Time) {
				s.lost.Add(1)
				continue
			}
			st := &g.stats[g.inv[e.Invocation]]
			var b *batch
			if len(g.stats) > 1 && st.lines < ownBatchLines {
				if g.shared == nil {
					// g.bytes bounds it: some lines have subjects of their own.
					g.shared = s.newBatch(sharedSubject(e.Function), e.Function, g.bytes)
					order = append(order, g.shared)
				}
				b = g.shared
			} else {
				if st.own == nil {
					st.own = s.newBatch(subject(e.Function, e.Invocation), e.Function, st.bytes)
					order = append(order, st.own)
				}
				b = st.own
			}
			// A batch that would pass the limit goes now; one line alone
			// is under it (MaxLine is far below maxMsg).
			if b.lines > 0 && len(b.data)+batchEntrySize(e) > s.maxMsg {
				pf.publish(b)
				*b = *s.newBatch(b.subject, e.Function, s.maxMsg)
			}
			b.data, b.prev = appendBatchEntry(b.data, e, b.prev)
			b.lines++
		}
	}
	for _, b := range order {
		if b.lines > 0 {
			pf.publish(b)
		}
	}
	for function, g := range s.groups {
		if !g.used {
			delete(s.groups, function) // a function quiet for a flush
			continue
		}
		g.used = false
	}
}

// newBatch starts a batch of function's lines on subject, with room for
// est bytes of entries (at most a message's worth), so that its buffer is
// allocated once, not grown by doubling.
func (s *Store) newBatch(subject, function string, est int) *batch {
	n := len(batchMagic) + binary.MaxVarintLen64 + len(function) + min(est, s.maxMsg)
	return &batch{subject: subject, data: appendBatchHeader(make([]byte, 0, n), function)}
}

// publishFailed counts the lines of a batch the stream did not take.
func (s *Store) publishFailed(_ jetstream.JetStream, msg *nats.Msg, err error) {
	n := 0
	_ = eachBatchEntry(msg.Data, func(*Entry) error { n++; return nil })
	s.lost.Add(uint64(n))
	s.log.Debug("function log batch not stored", "subject", msg.Subject, "err", err)
}

// report logs lines dropped or lost since the last report, once a second
// at most (or now, when closing).
func (s *Store) report(final bool) {
	d, l := s.dropped.Load(), s.lost.Load()
	if d == s.reported[0] && l == s.reported[1] {
		return
	}
	now := time.Now()
	if !final && now.Sub(s.lastReport) < time.Second {
		return
	}
	s.log.Warn("function log lines were not kept",
		"dropped_buffer_full", d-s.reported[0], "lost_publishing", l-s.reported[1])
	s.reported = [2]uint64{d, l}
	s.lastReport = now
}

// Flush waits until every line written so far is stored (bounded by ctx).
func (s *Store) Flush(ctx context.Context) error {
	req := make(chan struct{})
	select {
	case s.flushReq <- req:
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-s.pub.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close publishes what is buffered, waits for it to be stored (at most
// a few seconds) and stops. Lines written after Close are discarded.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		<-s.done
	})
}

// Dropped reports how many lines were not kept: dropped because the buffer
// was full, or lost because their batch could not be published.
func (s *Store) Dropped() uint64 { return s.dropped.Load() + s.lost.Load() }
