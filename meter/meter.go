package meter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
)

// Names of the JetStream resources the meter owns.
const (
	StreamName    = "GUST_USAGE"     // usage records, NDJSON, one function per message
	SubjectPrefix = "gust.usage."    // + function name
	BucketName    = "gust_usage"     // hourly aggregates, key FUNCTION.YYYYMMDDHH (UTC)
	ConsumerName  = "gust-usage-sum" // the durable consumer every node shares
	// oldConsumerName delivered whole messages to aggregators that
	// decoded every record; ConsumerName delivers headers only, and New
	// starts it where the old one left off.
	oldConsumerName = "gust-usage-agg"
	priorityGroup   = "aggregators"
)

// Defaults for Config's zero fields.
const (
	DefaultPricePerGBSecond        = 0.0000166667
	DefaultPricePerMillionRequests = 0.20
	DefaultRetention               = 30 * 24 * time.Hour
	DefaultFlushInterval           = time.Second
)

const (
	// bufferSize bounds the records waiting for the publisher. At 64k a
	// burst of tens of thousands of invocations per second fits while a
	// batch is in flight; only a stalled NATS makes it overflow.
	bufferSize = 1 << 16
	// maxBatch is how many records one round of async publishes carries,
	// and so also the most messages it can make (one function each).
	maxBatch = 4096
	// maxMsgRecords and maxMsgBytes bound one usage message. Many records
	// per message is what makes metering cheap: the stream stores, acks,
	// dedups and delivers messages, and the aggregator reads and writes
	// its KV buckets per message, so all of it is paid per batch.
	maxMsgRecords = 1024
	maxMsgBytes   = 256 << 10
	// maxPublishAttempts bounds retries of one message before its records
	// are dropped.
	maxPublishAttempts = 5
	// fetchBatch is both the consumer's MaxAckPending and the most
	// messages applied at once, with one KV write per hour bucket. Small,
	// since a message holds up to maxMsgRecords records.
	fetchBatch = 64
	// pullExpiry bounds one pull request; the pinned client pulls far more
	// often than pinnedTTL, so it keeps its pin while it lives.
	pullExpiry = 5 * time.Second
	// ackWait is shorter than pinnedTTL on purpose: when an aggregator
	// dies holding records, they are due for redelivery before another
	// node is pinned, and redeliveries go out before newer records, so
	// the successor still applies records in stream order.
	ackWait   = 10 * time.Second
	pinnedTTL = 30 * time.Second
)

// Config configures a Meter. Zero fields take the defaults above.
type Config struct {
	// Replicas of the usage stream and bucket (1 on a single node).
	Replicas int
	// PricePerGBSecond and PricePerMillionRequests price the estimated cost
	// in reports; the defaults are Lambda's x86 list prices.
	PricePerGBSecond        float64
	PricePerMillionRequests float64
	// Retention is the max age of raw records in the stream. Hourly
	// aggregates are kept regardless.
	Retention time.Duration
	// FlushInterval is the longest a record waits in memory before it is
	// published, unless a full batch or a Flush sends it sooner.
	FlushInterval time.Duration
	Logger        *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.PricePerGBSecond == 0 {
		c.PricePerGBSecond = DefaultPricePerGBSecond
	}
	if c.PricePerMillionRequests == 0 {
		c.PricePerMillionRequests = DefaultPricePerMillionRequests
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Meter records invocations durably and aggregates them per hour. It
// implements gust.Recorder. Build it with New; stop it with Close.
type Meter struct {
	cfg    Config
	log    *slog.Logger
	js     jetstream.JetStream
	pub    jetstream.JetStream // own context: PublishAsyncComplete then waits for the meter's publishes only
	stream jetstream.Stream
	cons   jetstream.Consumer
	kv     jetstream.KeyValue

	maxMsgBytes int // of one usage message, within the server's max payload

	// Records wait in buf, appended under mu by Record. A channel send
	// per record would wake the publisher per invocation, and on a small
	// machine a thread wake-up costs more than the rest of metering; kick
	// wakes it only when buf becomes non-empty and when it reaches
	// maxBatch, so under load it runs about once per flush interval.
	mu     sync.Mutex
	buf    []Record
	spare  []Record // the publisher's last batch, emptied, for reuse
	closed bool     // under mu: Record drops, the publisher takes the rest

	kick        chan struct{} // capacity 1
	flushReq    chan chan flushResult
	dropped     atomic.Uint64
	lastDropLog atomic.Int64

	handMu      sync.Mutex
	handStopped bool            // the aggregator gave its records back
	stragglers  []jetstream.Msg // delivered while closing, to give back

	pinMu sync.Mutex
	pinID string // the consumer pin this meter was last given

	stopPub   chan struct{}
	pubDone   chan struct{}
	stopAgg   context.CancelFunc
	aggDone   chan struct{}
	closeOnce sync.Once
}

var _ gust.Recorder = (*Meter)(nil)

type flushResult struct {
	err error
}

// New creates (or updates) the usage stream, bucket and consumer on js and
// starts the publisher and the aggregator.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Meter, error) {
	cfg = cfg.withDefaults()
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "gust usage records, NDJSON batches of one function",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.Retention,
		Discard:     jetstream.DiscardOld,
		// Messages carry an id, so a batch retried after a lost ack is
		// not stored twice. The window holds one id per message, which
		// batching keeps few (one id per invocation cost ~100 bytes of
		// server memory each for the whole window).
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("create usage stream: %w", err)
	}
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      BucketName,
		Description: "gust hourly usage aggregates",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create usage bucket: %w", err)
	}
	cons, err := ensureConsumer(ctx, stream)
	if err != nil {
		return nil, err
	}
	pub, err := newPublisher(js)
	if err != nil {
		return nil, err
	}
	aggCtx, stopAgg := context.WithCancel(context.Background())
	m := &Meter{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "meter"),
		js:          js,
		pub:         pub,
		stream:      stream,
		cons:        cons,
		kv:          kv,
		kick:        make(chan struct{}, 1),
		maxMsgBytes: maxMessageBytes(js.Conn()),
		flushReq:    make(chan chan flushResult),
		stopPub:     make(chan struct{}),
		pubDone:     make(chan struct{}),
		stopAgg:     stopAgg,
		aggDone:     make(chan struct{}),
	}
	if err := m.startAggregator(aggCtx); err != nil {
		stopAgg()
		return nil, err
	}
	go m.publishLoop()
	return m, nil
}

// ensureConsumer creates or updates the aggregators' consumer. It delivers
// headers only: a message's summary header is all the aggregator reads,
// and not sending every record back to the node that just wrote it is
// much of what keeps metering cheap. A message without a summary is
// fetched whole.
func ensureConsumer(ctx context.Context, stream jetstream.Stream) (jetstream.Consumer, error) {
	var lastErr error
	for range 3 {
		cfg := jetstream.ConsumerConfig{
			Durable:       ConsumerName,
			Description:   "folds usage records into hourly aggregates",
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckAllPolicy,
			AckWait:       ackWait,
			MaxDeliver:    -1,
			MaxAckPending: fetchBatch,
			HeadersOnly:   true,
			// Pinning lets exactly one node aggregate at a time, so records
			// are applied in stream order, which the per-bucket last-sequence
			// check relies on; another node takes over when the pin lapses.
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{priorityGroup},
			PinnedTTL:      pinnedTTL,
		}
		existing, err := stream.Consumer(ctx, ConsumerName)
		switch {
		case err == nil:
			// Where a consumer starts cannot change once it exists.
			ci := existing.CachedInfo()
			cfg.DeliverPolicy, cfg.OptStartSeq = ci.Config.DeliverPolicy, ci.Config.OptStartSeq
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			// Start after what the old consumer applied. Records it
			// applies meanwhile are delivered again and skipped by the
			// aggregates' last-sequence check, which also keeps a node
			// still on the old consumer from double counting.
			if old, err := stream.Consumer(ctx, oldConsumerName); err == nil {
				if floor := old.CachedInfo().AckFloor.Stream; floor > 0 {
					cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
				}
			}
		default:
			return nil, fmt.Errorf("usage consumer: %w", err)
		}
		cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
		if err == nil {
			if err := stream.DeleteConsumer(ctx, oldConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, fmt.Errorf("delete old usage consumer: %w", err)
			}
			return cons, nil
		}
		// Another node may have created it first, starting elsewhere:
		// read its start and try again.
		lastErr = err
	}
	return nil, fmt.Errorf("create usage consumer: %w", lastErr)
}

// maxMessageBytes keeps a message with room for headers under the
// server's max payload, whatever it is configured to.
func maxMessageBytes(nc *nats.Conn) int {
	limit := maxMsgBytes
	if mp := nc.MaxPayload(); mp > 0 && int64(limit) > mp/2 {
		limit = int(mp / 2)
	}
	// A message closes once past the limit, so a record may overshoot it
	// by one record's size.
	return max(limit-4096, 1)
}

func newPublisher(js jetstream.JetStream) (jetstream.JetStream, error) {
	pub, err := broker.NewPublisher(js,
		jetstream.WithPublishAsyncMaxPending(maxBatch),
		jetstream.WithPublishAsyncTimeout(10*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("usage publisher: %w", err)
	}
	return pub, nil
}

// Record meters one finished invocation. It never blocks and does not
// wake the publisher but to start a batch: if the buffer is full (NATS
// stalled for a long while) the record is dropped and counted.
func (m *Meter) Record(inv *gust.Invocation) {
	if inv == nil {
		return
	}
	r := NewRecord(inv)
	m.mu.Lock()
	if m.closed || len(m.buf) >= bufferSize {
		m.mu.Unlock()
		m.drop()
		return
	}
	m.buf = append(m.buf, r)
	n := len(m.buf)
	m.mu.Unlock()
	if n == 1 || n == maxBatch {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// pending is how many records wait in the buffer.
func (m *Meter) pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buf)
}

// take hands the publisher every buffered record, leaving the buffer it
// gave back last time in their place.
func (m *Meter) take() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	batch := m.buf
	m.buf, m.spare = m.spare[:0], nil
	return batch
}

// recycle returns a published batch's array for the next one; its
// strings are cleared first so the collector can free them.
func (m *Meter) recycle(batch []Record) {
	clear(batch)
	m.mu.Lock()
	if m.spare == nil {
		m.spare = batch[:0]
	}
	m.mu.Unlock()
}

func (m *Meter) drop() {
	n := m.dropped.Add(1)
	now := time.Now().UnixNano()
	last := m.lastDropLog.Load()
	if now-last >= int64(time.Second) && m.lastDropLog.CompareAndSwap(last, now) {
		m.log.Warn("usage records dropped: buffer full or meter closed", "dropped_total", n)
	}
}

// Dropped is how many records were lost since New: buffer overflow, the
// meter closed, or publishes that kept failing.
func (m *Meter) Dropped() uint64 { return m.dropped.Load() }

// Close publishes what is buffered (bounded by ctx), stops the publisher
// and the aggregator, and releases this node's pin on the consumer so that
// another node (or the next Meter) aggregates at once.
func (m *Meter) Close(ctx context.Context) error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		close(m.stopPub)
		select {
		case <-m.pubDone:
		case <-ctx.Done():
			err = fmt.Errorf("close meter: publishing buffered records: %w", ctx.Err())
		}
		m.stopAgg()
		select {
		case <-m.aggDone:
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("close meter: stopping aggregator: %w", ctx.Err())
			}
		}
		m.unpin(ctx)
	})
	return err
}

// unpin releases the consumer if this meter holds its pin, so the next
// aggregator starts at once instead of after pinnedTTL. It must not unpin
// another node: that node may hold records not yet applied, and records
// delivered meanwhile to a third node would overtake them.
func (m *Meter) unpin(ctx context.Context) {
	m.pinMu.Lock()
	id := m.pinID
	m.pinMu.Unlock()
	if id == "" {
		return
	}
	ci, err := m.cons.Info(ctx)
	if err != nil {
		m.log.Debug("usage consumer info at close", "err", err)
		return
	}
	for _, g := range ci.PriorityGroups {
		if g.Group == priorityGroup && g.PinnedClientID == id {
			if err := m.stream.UnpinConsumer(ctx, ConsumerName, priorityGroup); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				m.log.Debug("unpin usage consumer", "err", err)
			}
		}
	}
}

// Flush returns once every record handed to Record before the call is
// stored in the stream and folded into the hourly aggregates (by whichever
// node aggregates), or when ctx ends.
func (m *Meter) Flush(ctx context.Context) error {
	reply := make(chan flushResult, 1)
	select {
	case m.flushReq <- reply:
	case <-m.pubDone:
		return gust.Errorf(gust.EUNAVAILABLE, "meter is closed")
	case <-ctx.Done():
		return fmt.Errorf("flush usage: %w", ctx.Err())
	}
	select {
	case res := <-reply:
		if res.err != nil {
			return res.err
		}
	case <-ctx.Done():
		return fmt.Errorf("flush usage: %w", ctx.Err())
	}
	info, err := m.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("flush usage: stream info: %w", err)
	}
	target := info.State.LastSeq
	wait := time.Millisecond
	for {
		ci, err := m.cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("flush usage: consumer info: %w", err)
		}
		if ci.AckFloor.Stream >= target || ci.NumPending == 0 && ci.NumAckPending == 0 && ci.Delivered.Stream >= target {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("flush usage: waiting for aggregation up to sequence %d: %w", target, ctx.Err())
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// outMsg is one usage message on its way to the stream: NDJSON records of
// one function. Its message id stays the same across retries so the
// stream's duplicate window drops a copy whose first ack was merely lost.
type outMsg struct {
	function string
	subject  string
	data     []byte
	msgID    string
	records  int
	attempts int
	encoding string // of data: "" for NDJSON, or "s2"
	// sums is what the message adds to each hour bucket, sent along in
	// a header so the aggregator need not decode every record the
	// publisher has just encoded. noSum when a record's bucket depends
	// on the stream's timestamp or the function is no valid token.
	sums  []hourSum
	noSum bool
}

// hourSum is a message's share of one hour bucket.
type hourSum struct {
	hour int64 // Unix seconds, a multiple of 3600
	agg  aggregate
}

// add counts r in the message's summary.
func (msg *outMsg) add(r *Record) {
	if msg.noSum {
		return
	}
	if y := r.Start.Year(); r.Start.IsZero() || y < 1 || y > 9999 {
		// The aggregator puts it in the hour the stream stored it.
		msg.noSum, msg.sums = true, nil
		return
	}
	hour := floorHour(r.Start.Unix())
	var s *hourSum
	for i := range msg.sums {
		if msg.sums[i].hour == hour {
			s = &msg.sums[i]
			break
		}
	}
	if s == nil {
		msg.sums = append(msg.sums, hourSum{hour: hour})
		s = &msg.sums[len(msg.sums)-1]
	}
	s.agg.add(r)
}

func floorHour(unix int64) int64 {
	h := unix / 3600
	if unix%3600 < 0 {
		h--
	}
	return h * 3600
}

// Message buffers are reused across batches: a usage message grows to a
// quarter megabyte, and growing a fresh one per message copied it over
// and over.
const (
	newMsgBufSize = 4096
	maxFreeBufs   = 16
)

func (m *Meter) publishLoop() {
	defer close(m.pubDone)
	var (
		retry   []*outMsg
		free    [][]byte // message buffers to reuse
		stopped bool     // during a back-off: one last attempt, then return
	)
	timer := time.NewTimer(m.cfg.FlushInterval)
	defer timer.Stop()
	for {
		var flush chan flushResult
		stopping := stopped
		// A retry has already waited; otherwise wait for the first
		// record of a batch (or a flush or stop), then linger up to
		// FlushInterval for a fuller batch: the longer the linger, the
		// fewer messages.
		if len(retry) == 0 && !stopping {
			select {
			case <-m.kick:
			case flush = <-m.flushReq:
			case <-m.stopPub:
				stopping = true
			}
			if flush == nil && !stopping && m.pending() < maxBatch {
				resetTimer(timer, m.cfg.FlushInterval)
			linger:
				for {
					select {
					case <-m.kick:
						if m.pending() >= maxBatch {
							break linger
						}
					case flush = <-m.flushReq:
						break linger
					case <-m.stopPub:
						stopping = true
						break linger
					case <-timer.C:
						break linger
					}
				}
			}
		}
		// Everything buffered goes now (at most bufferSize records), so a
		// flush or stop covers every record handed over before it.
		batch := m.take()
		msgs := append(retry, m.encode(batch, &free)...)
		m.recycle(batch)
		var err error
		retry, err = m.publishMsgs(msgs)
		free = reuseBuffers(free, msgs, retry)
		if flush != nil {
			if err == nil && len(retry) > 0 {
				err = gust.Errorf(gust.EUNAVAILABLE, "%d usage records not yet stored", countRecords(retry))
			}
			flush <- flushResult{err: err}
		}
		if stopping {
			if n := countRecords(retry); n > 0 {
				m.dropped.Add(uint64(n))
				m.log.Error("usage records lost at close", "count", n, "err", err)
			}
			return
		}
		if len(retry) > 0 {
			// Back off before retrying so a stalled stream is not hammered.
			resetTimer(timer, m.cfg.FlushInterval)
			select {
			case <-timer.C:
			case <-m.stopPub:
				// Close marked the meter closed before this, so what is
				// buffered now is all there will be: one last attempt.
				stopped = true
			}
		}
	}
}

// reuseBuffers keeps the buffers of the messages that are done (stored or
// given up) for the next batch.
func reuseBuffers(free [][]byte, sent, retry []*outMsg) [][]byte {
	for _, msg := range sent {
		if len(free) >= maxFreeBufs {
			break
		}
		if slices.Contains(retry, msg) || cap(msg.data) > 2*maxMsgBytes {
			continue
		}
		free = append(free, msg.data[:0])
		msg.data = nil
	}
	return free
}

func countRecords(msgs []*outMsg) int {
	n := 0
	for _, msg := range msgs {
		n += msg.records
	}
	return n
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(d)
}

// encode packs batch into messages, one function per message, so that
// history filtered by function reads only that function's subject and the
// aggregator pays one stream message for many invocations. A message ends
// at maxMsgRecords records or m.maxMsgBytes bytes. Buffers come from free
// when it has some.
func (m *Meter) encode(batch []Record, free *[][]byte) []*outMsg {
	var (
		msgs []*outMsg
		open = map[string]*outMsg{} // function -> message being filled
		last *outMsg                // a batch is mostly runs of one function
	)
	for i := range batch {
		r := &batch[i]
		msg := last
		if msg == nil || msg.function != r.Function {
			msg = open[r.Function]
		}
		if msg == nil {
			var buf []byte
			if n := len(*free); n > 0 {
				buf, *free = (*free)[n-1], (*free)[:n-1]
			} else {
				buf = make([]byte, 0, newMsgBufSize)
			}
			tok := token(r.Function)
			msg = &outMsg{function: r.Function, subject: SubjectPrefix + tok, msgID: nuid.Next(), data: buf, noSum: tok != r.Function}
			open[r.Function] = msg
			msgs = append(msgs, msg)
		}
		if msg.records > 0 {
			msg.data = append(msg.data, '\n')
		}
		msg.data = r.appendJSON(msg.data)
		msg.records++
		msg.add(r)
		last = msg
		if msg.records >= maxMsgRecords || len(msg.data) >= m.maxMsgBytes {
			delete(open, r.Function)
			last = nil
		}
	}
	// Compress each message into a buffer of its own; the NDJSON one
	// goes back to free at once.
	for _, msg := range msgs {
		var buf []byte
		if n := len(*free); n > 0 {
			buf, *free = (*free)[n-1], (*free)[:n-1]
		}
		if z, ok := compress(buf, msg.data); ok {
			*free = append(*free, msg.data[:0])
			msg.data, msg.encoding = z, "s2"
		} else if buf != nil {
			*free = append(*free, buf)
		}
	}
	return msgs
}

// publishMsgs publishes msgs asynchronously, waits for every ack and
// returns the messages that must be retried.
func (m *Meter) publishMsgs(msgs []*outMsg) ([]*outMsg, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	var firstErr error
	for i, out := range msgs {
		out.attempts++
		msg := &nats.Msg{Subject: out.subject, Data: out.data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, out.msgID)
		if out.encoding != "" {
			msg.Header.Set(encodingHeader, out.encoding)
		}
		if !out.noSum && len(out.sums) > 0 {
			msg.Header.Set(sumHeader, formatSums(out.sums))
		}
		f, err := m.pub.PublishMsgAsync(msg, jetstream.WithExpectStream(StreamName))
		if err != nil {
			firstErr = firstOf(firstErr, fmt.Errorf("publish usage records: %w", err))
			continue
		}
		futures[i] = f
	}
	select {
	case <-m.pub.PublishAsyncComplete():
	case <-time.After(15 * time.Second):
		firstErr = firstOf(firstErr, gust.Errorf(gust.EUNAVAILABLE, "timed out waiting for usage record acks"))
	}
	var failed []*outMsg
	for i, f := range futures {
		ok := false
		if f != nil {
			select {
			case <-f.Ok():
				ok = true
			case err := <-f.Err():
				firstErr = firstOf(firstErr, fmt.Errorf("store usage records: %w", err))
			default:
			}
		}
		if ok {
			continue
		}
		if msgs[i].attempts >= maxPublishAttempts {
			m.dropped.Add(uint64(msgs[i].records))
			continue
		}
		failed = append(failed, msgs[i])
	}
	if firstErr != nil {
		m.log.Warn("publishing usage records", "messages", len(msgs), "retrying", len(failed), "err", firstErr)
	}
	return failed, firstErr
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// subjectFor puts the function name in the subject so records of one
// function can be filtered; a name that is not a valid subject token (it
// cannot be, after gust.ValidateName, but the meter must not fail on it)
// goes under "_".
func subjectFor(function string) string {
	return SubjectPrefix + token(function)
}

// token is function as a subject and key token.
func token(function string) string {
	if gust.ValidateName(function) != nil {
		return "_"
	}
	return function
}
