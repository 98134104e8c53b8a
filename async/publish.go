package async

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher stores events in JetStream and tells each caller when its own
// event is acknowledged. It does what jetstream.PublishMsgAsync did for
// store, with less per event: that one armed a timer per message, built a
// random reply token, allocated a future with two lazily made channels and
// decoded every PubAck with encoding/json, together about a twentieth of a
// node's CPU per accept. Here each event awaiting its ack holds a slot of
// the window, and the slot's number is its reply subject's last token: one
// subscription takes every ack, reads the usual PubAck by hand and hands it
// to the slot's waiter on a pooled channel, and one sweep a second fails
// what waited longer than the timeout.
//
// Slots are reused, most recently freed first, so the few reply subjects
// in use stay in the server's subject match cache; a unique reply per
// event cost the server a cache miss, insert and eviction per ack. A slot
// whose wait ended without its ack (a timeout, a publish that may have
// been written in part) is retired: a late ack to it must not be taken for
// another event's. It is replaced by a slot retired more than
// retireQuarantine ago, or by a new number, so that a NATS outage, which
// times out a window of waits at a time, does not grow the slots for good.
//
// Concurrent callers still share the connection's writes: each publish
// goes into nats.go's buffer and its flusher writes what has gathered.
type publisher struct {
	nc      *nats.Conn
	prefix  string // reply subjects: prefix + slot number
	sub     *nats.Subscription
	timeout time.Duration
	window  chan struct{} // a token per event awaiting its ack

	// tick counts the sweeps; a wait is stamped with it and failed once
	// it is timeoutTicks old, so no clock is read per event.
	tick         atomic.Int64
	timeoutTicks int64

	mu      sync.Mutex
	replies []string      // by slot number
	waits   []*pubWait    // by slot number; nil when free or retired
	free    []uint32      // free slot numbers, the most recently freed last
	retired []retiredSlot // oldest first
	closed  bool
	done    chan struct{} // closed by close: the sweep stops
}

// retiredSlot is a slot no longer used since tick at.
type retiredSlot struct {
	slot uint32
	at   int64
}

// retireQuarantine is how long a retired slot stays unused: far beyond
// any ack a stream still sends after a timeout.
const retireQuarantine = 10 * time.Minute

// sweepEvery is the timeout's resolution.
const sweepEvery = time.Second

// Retries of a publish that found no stream listening (a stream being
// created or moved), as nats.go's own async publisher does.
const (
	noResponderRetries = 2
	noResponderWait    = 250 * time.Millisecond
)

var (
	errNoStreamResponse = errors.New("no stream answered (nats: no responders)")
	errPublishTimeout   = errors.New("timed out waiting for the stream's ack")
	errPublisherClosed  = errors.New("async publisher closed")
)

type pubWait struct {
	ch    chan pubResult // capacity 1; one send per wait, by whoever freed its slot
	stamp int64
}

type pubResult struct {
	seq          uint64
	err          error
	noResponders bool
}

var pubWaits = sync.Pool{New: func() any { return &pubWait{ch: make(chan pubResult, 1)} }}

func newPublisher(nc *nats.Conn, window int, timeout time.Duration) (*publisher, error) {
	p := &publisher{
		nc:           nc,
		prefix:       nc.NewInbox() + ".",
		timeout:      timeout,
		window:       make(chan struct{}, window),
		timeoutTicks: int64((timeout + sweepEvery - 1) / sweepEvery),
		replies:      make([]string, 0, window),
		waits:        make([]*pubWait, 0, window),
		free:         make([]uint32, 0, window),
		done:         make(chan struct{}),
	}
	// Pushed in reverse so that slot 0 is used first.
	for range window {
		p.mint()
	}
	slices.Reverse(p.free)
	sub, err := nc.Subscribe(p.prefix+"*", p.onAck)
	if err != nil {
		return nil, fmt.Errorf("subscribe to acks: %w", err)
	}
	// Acks are small and their number is bounded by the window; the
	// subscription must never drop one as a slow consumer would.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("ack subscription limits: %w", err)
	}
	p.sub = sub
	go p.sweepLoop()
	return p, nil
}

// sweepLoop sweeps every sweepEvery until close. It is the publisher's
// own, not tied to the node's other work: a publish waiting at shutdown
// still times out until close fails it.
func (p *publisher) sweepLoop() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.sweep()
		}
	}
}

// retireLocked takes slot out of use (see publisher) and frees another in
// its place. p.mu is held.
func (p *publisher) retireLocked(slot uint32) {
	now := p.tick.Load()
	p.retired = append(p.retired, retiredSlot{slot: slot, at: now})
	if old := p.retired[0]; now-old.at > int64(retireQuarantine/sweepEvery) {
		p.retired = p.retired[1:]
		p.free = append(p.free, old.slot)
		return
	}
	p.mint()
}

// unwritten reports whether a PublishMsg error means nothing was sent, so
// no ack can come and the slot can be used again at once.
func unwritten(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrMaxPayload) ||
		errors.Is(err, nats.ErrBadSubject)
}

// mint adds a new free slot. p.mu is held, or p is not shared yet.
func (p *publisher) mint() {
	n := uint32(len(p.replies))
	p.replies = append(p.replies, p.prefix+strconv.FormatUint(uint64(n), 36))
	p.waits = append(p.waits, nil)
	p.free = append(p.free, n)
}

// publish stores m and returns its stream sequence once JetStream has
// acknowledged it. m must not be changed until publish returns.
func (p *publisher) publish(m *nats.Msg) (uint64, error) {
	// Back pressure: a full window makes the caller wait for a slot, up
	// to the timeout.
	select {
	case p.window <- struct{}{}:
	default:
		t := time.NewTimer(p.timeout)
		select {
		case p.window <- struct{}{}:
			t.Stop()
		case <-t.C:
			return 0, fmt.Errorf("%w: %d events awaiting their acks", errPublishTimeout, cap(p.window))
		}
	}
	defer func() { <-p.window }()
	for attempt := 0; ; attempt++ {
		r := p.once(m)
		if !r.noResponders || attempt >= noResponderRetries {
			return r.seq, r.err
		}
		time.Sleep(noResponderWait)
	}
}

// once publishes m from a free slot and waits for the slot's reply. The
// caller holds a window token, so a slot is free.
func (p *publisher) once(m *nats.Msg) pubResult {
	w := pubWaits.Get().(*pubWait)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pubWaits.Put(w)
		return pubResult{err: errPublisherClosed}
	}
	slot := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	w.stamp = p.tick.Load()
	p.waits[slot] = w
	m.Reply = p.replies[slot]
	p.mu.Unlock()
	if err := p.nc.PublishMsg(m); err != nil {
		p.mu.Lock()
		mine := p.waits[slot] == w
		if mine {
			p.waits[slot] = nil
			if unwritten(err) {
				p.free = append(p.free, slot)
			} else {
				// Whether any of it reached the server is unknown.
				p.retireLocked(slot)
			}
		}
		p.mu.Unlock()
		if mine {
			pubWaits.Put(w)
			return pubResult{err: err}
		}
		// An ack or the sweep got there first and sends on w.ch.
	}
	r := <-w.ch
	pubWaits.Put(w)
	return r
}

// onAck runs on the subscription's goroutine for every reply.
func (p *publisher) onAck(m *nats.Msg) {
	if len(m.Subject) <= len(p.prefix) {
		return
	}
	n, err := strconv.ParseUint(m.Subject[len(p.prefix):], 36, 32)
	if err != nil {
		return
	}
	slot := uint32(n)
	p.mu.Lock()
	var w *pubWait
	if int(slot) < len(p.waits) {
		if w = p.waits[slot]; w != nil {
			p.waits[slot] = nil
			p.free = append(p.free, slot)
		}
	}
	p.mu.Unlock()
	if w != nil {
		w.ch <- parseAck(m)
	}
}

// sweep fails the waits older than the timeout and retires their slots.
// Called every sweepEvery.
func (p *publisher) sweep() {
	now := p.tick.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	for slot, w := range p.waits {
		if w != nil && now-w.stamp > p.timeoutTicks {
			p.waits[slot] = nil
			p.retireLocked(uint32(slot))
			w.ch <- pubResult{err: fmt.Errorf("%w after %s", errPublishTimeout, p.timeout)}
		}
	}
}

// close fails every wait and every later publish, and stops taking acks.
func (p *publisher) close() {
	p.mu.Lock()
	if !p.closed {
		close(p.done)
	}
	p.closed = true
	for slot, w := range p.waits {
		if w != nil {
			p.waits[slot] = nil
			w.ch <- pubResult{err: errPublisherClosed}
		}
	}
	p.mu.Unlock()
	_ = p.sub.Unsubscribe()
}

// parseAck reads a PubAck. The usual one, {"stream":"NAME","seq":N} with
// perhaps a domain or "duplicate":true, is read by hand; anything with an
// error, or unusual, goes through encoding/json.
func parseAck(m *nats.Msg) pubResult {
	d := m.Data
	if len(d) == 0 {
		if m.Header.Get("Status") == "503" {
			return pubResult{err: errNoStreamResponse, noResponders: true}
		}
		return pubResult{err: errors.New("empty reply from the stream")}
	}
	if bytes.HasPrefix(d, []byte(`{"stream":"`)) && !bytes.Contains(d, []byte(`"error"`)) {
		if i := bytes.Index(d, []byte(`,"seq":`)); i > 0 {
			var seq uint64
			j := i + len(`,"seq":`)
			for ; j < len(d) && '0' <= d[j] && d[j] <= '9'; j++ {
				seq = seq*10 + uint64(d[j]-'0')
			}
			if j > i+len(`,"seq":`) && j-i-len(`,"seq":`) <= 19 && j < len(d) && (d[j] == ',' || d[j] == '}') && seq > 0 {
				return pubResult{seq: seq}
			}
		}
	}
	var pa struct {
		Error    *jetstream.APIError `json:"error"`
		Stream   string              `json:"stream"`
		Sequence uint64              `json:"seq"`
	}
	if err := json.Unmarshal(d, &pa); err != nil {
		return pubResult{err: fmt.Errorf("invalid ack from the stream: %w", err)}
	}
	if pa.Error != nil {
		return pubResult{err: pa.Error}
	}
	if pa.Stream == "" {
		return pubResult{err: fmt.Errorf("invalid ack from the stream: %q", d)}
	}
	return pubResult{seq: pa.Sequence}
}
