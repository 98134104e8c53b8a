package async

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/broker"
)

func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Every PubAck shape the server sends is read as encoding/json reads it.
func TestParseAck(t *testing.T) {
	noResp := &nats.Msg{Header: nats.Header{"Status": []string{"503"}}}
	for _, c := range []struct {
		name string
		m    *nats.Msg
		seq  uint64
		err  bool
		nr   bool
	}{
		{"plain", &nats.Msg{Data: []byte(`{"stream":"GUST_ASYNC","seq":42}`)}, 42, false, false},
		{"duplicate", &nats.Msg{Data: []byte(`{"stream":"GUST_ASYNC","seq":7,"duplicate":true}`)}, 7, false, false},
		{"domain", &nats.Msg{Data: []byte(`{"stream":"GUST_ASYNC","domain":"hub","seq":9}`)}, 9, false, false},
		{"big", &nats.Msg{Data: []byte(`{"stream":"S","seq":18446744073709551615}`)}, 18446744073709551615, false, false},
		{"error", &nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"GUST_ASYNC","seq":0}`)}, 0, true, false},
		{"error first", &nats.Msg{Data: []byte(`{"stream":"GUST_ASYNC","seq":3,"error":{"code":400,"description":"x"}}`)}, 0, true, false},
		{"no stream", &nats.Msg{Data: []byte(`{"seq":3}`)}, 0, true, false},
		{"garbage", &nats.Msg{Data: []byte(`{"stream":"GUST_ASYNC","seq":12x`)}, 0, true, false},
		{"no responders", noResp, 0, true, true},
		{"empty", &nats.Msg{}, 0, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := parseAck(c.m)
			if (r.err != nil) != c.err || r.noResponders != c.nr || (!c.err && r.seq != c.seq) {
				t.Fatalf("parseAck = %+v, want seq %d, error %v, no responders %v", r, c.seq, c.err, c.nr)
			}
		})
	}
	var apiErr *jetstream.APIError
	if r := parseAck(&nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"full"},"stream":"S"}`)}); !errors.As(r.err, &apiErr) || apiErr.ErrorCode != 10077 {
		t.Fatalf("error ack = %v, want the server's APIError", r.err)
	}
}

// Concurrent publishes each get their own event's sequence, and reuse a
// few slots rather than a reply subject per event.
func TestPublisherAcksEach(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	s, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "P", Subjects: []string{"p.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPublisher(b.Conn(), 64, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				data := []byte{byte(g), byte(i)}
				seq, err := p.publish(&nats.Msg{Subject: "p.x", Data: data})
				if err != nil {
					errs <- err
					return
				}
				m, err := s.GetMsg(ctx, seq)
				if err != nil || string(m.Data) != string(data) {
					errs <- errors.New("a publish was answered with another message's sequence")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(p.replies); n != 64 {
		t.Fatalf("%d slots after acked publishes, want the window's 64", n)
	}
}

// A publish nobody stores fails after its retries; one whose ack never
// comes fails at the timeout, and its slot is retired so that a late ack
// cannot answer another event.
func TestPublisherFailures(t *testing.T) {
	b := startBroker(t)
	p, err := newPublisher(b.Conn(), 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if _, err := p.publish(&nats.Msg{Subject: "nostream.x", Data: []byte("x")}); !errors.Is(err, errNoStreamResponse) {
		t.Fatalf("publish with no stream: %v, want no responders", err)
	}

	// A listener that holds every request and answers it when told.
	held := make(chan string, 4)
	sub, err := b.Conn().Subscribe("silent.x", func(m *nats.Msg) { held <- m.Reply })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	done := make(chan error, 1)
	go func() {
		_, err := p.publish(&nats.Msg{Subject: "silent.x", Data: []byte("x")})
		done <- err
	}()
	reply := <-held
	// Two sweeps later than the stamp is over a one-tick timeout.
	p.sweep()
	p.sweep()
	if err := <-done; !errors.Is(err, errPublishTimeout) {
		t.Fatalf("publish without an ack: %v, want a timeout", err)
	}
	p.mu.Lock()
	retired := reply[len(p.prefix):]
	for _, s := range p.free {
		if p.replies[s] == reply {
			t.Errorf("slot %s was freed after its wait timed out", retired)
		}
	}
	slots := len(p.replies)
	p.mu.Unlock()
	if slots != 5 {
		t.Fatalf("%d slots after one was retired, want 5 (4 and its replacement)", slots)
	}
	// The late ack is ignored; the next publishes do not use that slot.
	if err := b.Conn().Publish(reply, []byte(`{"stream":"X","seq":99}`)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "Q", Subjects: []string{"q.>"}}); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		seq, err := p.publish(&nats.Msg{Subject: "q.x", Data: []byte("y")})
		if err != nil || seq == 99 {
			t.Fatalf("publish after a retired slot: seq %d, %v", seq, err)
		}
	}

	p.close()
	if _, err := p.publish(&nats.Msg{Subject: "q.x", Data: []byte("z")}); !errors.Is(err, errPublisherClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

// A message id reaches the stream, which drops a repeat within its
// duplicate window and acks it with the first one's sequence.
func TestPublisherMsgID(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	s, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "D", Subjects: []string{"d.>"}, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPublisher(b.Conn(), 4, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var seqs []uint64
	for range 2 {
		m := &nats.Msg{Subject: "d.x", Data: []byte("x"), Header: nats.Header{jetstream.MsgIDHeader: []string{"tick-1"}}}
		seq, err := p.publish(m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || seqs[0] != seqs[1] {
		t.Fatalf("two publishes with one message id: %d stored, sequences %v", info.State.Msgs, seqs)
	}
}

// A retired slot comes back into use once its quarantine is over, in place
// of a new one, so timeouts do not grow the slots for good; a publish that
// failed before anything was written frees its slot at once.
func TestPublisherReusesRetiredSlots(t *testing.T) {
	b := startBroker(t)
	p, err := newPublisher(b.Conn(), 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	take := func() uint32 {
		s := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	first := take()
	p.retireLocked(first)
	if n := len(p.replies); n != 5 || slices.Contains(p.free, first) {
		t.Fatalf("after a retirement: %d slots, free %v; want 5, without slot %d", n, p.free, first)
	}
	p.tick.Add(int64(retireQuarantine/sweepEvery) + 1)
	p.retireLocked(take())
	if n := len(p.replies); n != 5 || !slices.Contains(p.free, first) {
		t.Fatalf("after the quarantine: %d slots, free %v; want 5, with slot %d again", n, p.free, first)
	}
	if !unwritten(fmt.Errorf("publish: %w", nats.ErrConnectionClosed)) || unwritten(errors.New("write tcp: broken pipe")) {
		t.Error("unwritten misjudges which publish errors sent nothing")
	}
}
