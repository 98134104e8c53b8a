package logs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/broker"
)

// Stream layout: a message is a batch of lines, NDJSON, one Entry per
// line. Its subject is gust.logs.FUNCTION.INVOCATION when the lines are
// of one invocation ("none" for an instance's start-up), so a query for
// one invocation is a subject filter, not a scan; lines of several sparse
// invocations of a function share gust.logs.FUNCTION.~shared, which such
// a query also reads and filters. (A message of gust before batching holds
// one Entry, which reads as a batch of one.)
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
}

// Store keeps function logs in a JetStream stream. It implements
// gust.LogSink.
//
// Writing costs the function an append under a mutex and nothing more: no
// goroutine is woken per line. A publisher goroutine takes the buffered
// lines every FlushInterval (sooner once flushBytes have gathered), packs
// them into few NDJSON messages (see publishBatches) and publishes those
// asynchronously, a bounded number in flight. Paying the stream per batch
// rather than per line is what keeps log capture cheap (issue 7). Lines
// that find the buffer full are dropped and counted, and so are lines of
// a batch the stream did not take; Close publishes what is buffered.
type Store struct {
	cfg    StoreConfig
	js     jetstream.JetStream
	pub    jetstream.JetStream // own context: PublishAsyncComplete waits for the store's batches only
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
	s := &Store{
		cfg: cfg, js: js, log: cfg.Logger, nowFn: time.Now,
		maxMsg:   maxMessageBytes(js.Conn()),
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

// entryOverhead approximates what an entry adds to a batch besides its
// message: the JSON keys, the time and the invocation id.
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

// publishBatches publishes one flush's lines. Each invocation's lines go
// to its own subject when they are many or the only ones of their
// function; otherwise the lines of a function's sparse invocations share
// one message on its shared subject. A message costs the stream far more
// than a line (≈ 20 µs of CPU against ≈ 1 µs), so a busy function whose
// invocations write a line or two each is stored in a few messages a
// second, not one per invocation; a chatty invocation keeps messages of
// its own, found by subject.
func (s *Store) publishBatches(chunks [][]Entry) {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	subjects := make([]string, 0, n)
	lines := make(map[string]int) // by invocation subject
	invs := make(map[string]int)  // distinct invocations by function
	size := make(map[string]int)  // estimated bytes by invocation subject and by function
	for _, c := range chunks {
		for i := range c {
			subj := subject(c[i].Function, c[i].Invocation)
			if lines[subj] == 0 {
				invs[c[i].Function]++
			}
			lines[subj]++
			sz := len(c[i].Message) + len(c[i].Function) + len(c[i].Invocation) + entryOverhead
			size[subj] += sz
			size[c[i].Function] += sz
			subjects = append(subjects, subj)
		}
	}
	bt := &batcher{s: s, pub: &publishFlush{s: s}, bySubj: make(map[string]*batch)}
	k := 0
	for _, c := range chunks {
		for i := range c {
			subj := subjects[k]
			k++
			est := size[subj]
			if invs[c[i].Function] > 1 && lines[subj] < ownBatchLines {
				subj = sharedSubject(c[i].Function)
				est = size[c[i].Function] // an upper bound: some of it has subjects of its own
			}
			bt.add(subj, est, &c[i])
		}
	}
	for _, b := range bt.order {
		if b.lines > 0 {
			bt.pub.publish(b)
		}
	}
}

// batcher groups one flush's entries by subject, as NDJSON.
type batcher struct {
	s       *Store
	pub     *publishFlush
	order   []*batch // by first line
	bySubj  map[string]*batch
	scratch []byte
}

// add appends e to the batch of subj; est is what that batch's lines
// will take, so its buffer is allocated once, not grown by doubling.
func (bt *batcher) add(subj string, est int, e *Entry) {
	b := bt.bySubj[subj]
	if b == nil {
		b = &batch{subject: subj, data: make([]byte, 0, min(est, bt.s.maxMsg))}
		bt.bySubj[subj] = b
		bt.order = append(bt.order, b)
	}
	if !jsonTimeOK(e.Time) {
		bt.s.lost.Add(1)
		return
	}
	bt.scratch = appendEntry(bt.scratch[:0], e)
	// A batch that would pass the limit goes now; one line alone is
	// under it (MaxLine, escaped, is far below maxMsg).
	if len(b.data) > 0 && len(b.data)+len(bt.scratch) > bt.s.maxMsg {
		bt.pub.publish(b)
		b.data, b.lines = make([]byte, 0, min(est, bt.s.maxMsg)), 0
	}
	b.data = append(b.data, bt.scratch...)
	b.lines++
}

// publishFailed counts the lines of a batch the stream did not take.
func (s *Store) publishFailed(_ jetstream.JetStream, msg *nats.Msg, err error) {
	s.lost.Add(uint64(bytes.Count(msg.Data, []byte{'\n'})))
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
