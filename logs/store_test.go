package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
)

func testJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.JetStream()
}

// testStore opens a store whose interval never fires on its own unless
// asked for, and whose clock ticks a millisecond per read, so the order
// lines were written in is visible in their times.
func testStore(t testing.TB, js jetstream.JetStream, mod func(*StoreConfig)) *Store {
	t.Helper()
	cfg := StoreConfig{FlushInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewStore(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.nowFn = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Millisecond)
		return clock
	}
	t.Cleanup(s.Close)
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func read(t testing.TB, s *Store, q Query) []Entry {
	t.Helper()
	var out []Entry
	if err := s.Read(ctx(t), q, false, func(e Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// subjects returns the number of messages on each subject of the stream.
func subjects(t testing.TB, js jetstream.JetStream) map[string]uint64 {
	t.Helper()
	st, err := js.Stream(ctx(t), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx(t), jetstream.WithSubjectFilter(SubjectPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

func messages(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	n := uint64(0)
	for _, k := range subjects(t, js) {
		n += k
	}
	return n
}

func texts(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s/%s:%s\n", e.Invocation, e.Stream, e.Message)
	}
	return b.String()
}

// What is written between two flushes is stored in few messages: an
// invocation alone in its function, or with many lines, gets a message of
// its own subject; sparse invocations of one function share one. Reading
// splits them back into lines in the order written, interleaved across
// invocations as it happened, and finds one invocation's lines wherever
// they are.
func TestBatching(t *testing.T) {
	js := testJS(t)
	s := testStore(t, js, nil)
	s.FunctionLog("fn", 1, "a", "stdout", []byte("a1\na2\n"))
	s.FunctionLog("fn", 1, "b", "stderr", []byte("b1\n"))
	s.FunctionLog("fn", 1, "a", "stderr", []byte("a3"))
	s.Event("fn", 1, "b", "cold start")
	s.FunctionLog("other", 2, "c", "stdout", []byte("c1\n"))
	s.FunctionLog("fn", 1, "", "stdout", []byte("init\n"))
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"gust.logs.fn.~shared": 1, "gust.logs.other.c": 1}
	if got := subjects(t, js); !maps.Equal(got, want) {
		t.Fatalf("messages by subject %v, want %v", got, want)
	}
	s.FunctionLog("fn", 1, "chatty", "stdout", []byte(strings.Repeat("chatty\n", ownBatchLines)))
	s.FunctionLog("fn", 1, "d", "stdout", []byte("d1\n"))
	s.FunctionLog("fn", 1, "e", "stdout", []byte("e1\n"))
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	want = map[string]uint64{"gust.logs.fn.~shared": 2, "gust.logs.other.c": 1, "gust.logs.fn.chatty": 1}
	if got := subjects(t, js); !maps.Equal(got, want) {
		t.Fatalf("messages by subject %v, want %v", got, want)
	}

	got := texts(read(t, s, Query{Function: "fn"}))
	if want := "a/stdout:a1\na/stdout:a2\nb/stderr:b1\na/stderr:a3\nb/gust:cold start\n/stdout:init\n" +
		strings.Repeat("chatty/stdout:chatty\n", ownBatchLines) + "d/stdout:d1\ne/stdout:e1\n"; got != want {
		t.Fatalf("read\n%s\nwant\n%s", got, want)
	}
	for inv, want := range map[string]string{
		"b":      "b/stderr:b1\nb/gust:cold start\n",
		"none":   "/stdout:init\n",
		"d":      "d/stdout:d1\n",
		"chatty": strings.Repeat("chatty/stdout:chatty\n", ownBatchLines),
		"c":      "",
	} {
		if got := texts(read(t, s, Query{Function: "fn", Invocation: inv})); got != want {
			t.Errorf("invocation %s: %q, want %q", inv, got, want)
		}
	}
	if got := texts(read(t, s, Query{Function: "other", Invocation: "c"})); got != "c/stdout:c1\n" {
		t.Errorf("other's invocation c: %q", got)
	}
	if got := texts(read(t, s, Query{Function: "fn", Limit: 2})); got != "d/stdout:d1\ne/stdout:e1\n" {
		t.Errorf("newest two: %q", got)
	}
	if err := s.Read(ctx(t), Query{Function: "fn", Invocation: SharedToken}, false, func(Entry) error { return nil }); gust.ErrorCode(err) != gust.EINVALID {
		t.Errorf("reading the shared subject as an invocation: %v, want EINVALID", err)
	}
}

// A batch is stored after its lines were written, so --since filters
// lines, not only messages.
func TestSinceFiltersLinesInsideABatch(t *testing.T) {
	js := testJS(t)
	s := testStore(t, js, nil)
	for i := range 5 {
		s.FunctionLog("fn", 1, "a", "stdout", fmt.Appendf(nil, "line %d\n", i))
	}
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	all := read(t, s, Query{Function: "fn"})
	if len(all) != 5 {
		t.Fatalf("%d lines, want 5", len(all))
	}
	got := read(t, s, Query{Function: "fn", Since: all[3].Time})
	if texts(got) != "a/stdout:line 3\na/stdout:line 4\n" {
		t.Fatalf("since the fourth line: %q", texts(got))
	}
}

// A line longer than MaxLine is cut with the marker, and a flood of
// output is split into messages the server takes, none of it lost.
func TestLongLinesAndLargeOutput(t *testing.T) {
	js := testJS(t)
	s := testStore(t, js, nil)
	s.FunctionLog("fn", 1, "a", "stderr", []byte(strings.Repeat("y", 3*MaxLine)+"\nafter\n"))
	line := strings.Repeat("z", 1000)
	const many = 1500
	for i := range many {
		s.FunctionLog("fn", 1, "b", "stdout", fmt.Appendf(nil, "%04d %s\n", i, line))
	}
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	a := read(t, s, Query{Function: "fn", Invocation: "a"})
	if len(a) != 2 || a[0].Message != strings.Repeat("y", MaxLine)+TruncatedMarker || a[1].Message != "after" {
		t.Fatalf("long line: %d entries, first %d bytes", len(a), len(a[0].Message))
	}
	b := read(t, s, Query{Function: "fn", Invocation: "b", Limit: MaxLimit})
	if len(b) != many {
		t.Fatalf("%d lines of %d", len(b), many)
	}
	for i, e := range b {
		if !strings.HasPrefix(e.Message, fmt.Sprintf("%04d ", i)) {
			t.Fatalf("line %d is %.10q", i, e.Message)
		}
	}
	if n := subjects(t, js)["gust.logs.fn.b"]; n < uint64(many*1000/s.maxMsg) || n > many/10 {
		t.Fatalf("%d messages for %d KB of output in batches of at most %d bytes", n, many, s.maxMsg)
	}
	if s.Dropped() != 0 {
		t.Fatalf("dropped %d", s.Dropped())
	}
}

// Lines are published within the flush interval without anyone asking,
// so a follower sees a running invocation's lines.
func TestFollowSeesLinesWithoutFlush(t *testing.T) {
	js := testJS(t)
	s := testStore(t, js, func(c *StoreConfig) { c.FlushInterval = 20 * time.Millisecond })
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan Entry, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- s.Read(c, Query{Function: "fn"}, true, func(e Entry) error { got <- e; return nil })
	}()
	s.FunctionLog("fn", 1, "a", "stdout", []byte("first\n"))
	select {
	case e := <-got:
		if e.Message != "first" {
			t.Fatalf("followed %q", e.Message)
		}
	case <-c.Done():
		t.Fatal("the line never reached the follower")
	}
	s.FunctionLog("fn", 1, "a", "stdout", []byte("second\n"))
	if e := <-got; e.Message != "second" {
		t.Fatalf("followed %q", e.Message)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Close publishes what is buffered; lines written after it are ignored.
func TestCloseKeepsBufferedLines(t *testing.T) {
	js := testJS(t)
	s := testStore(t, js, nil)
	for i := range 100 {
		s.FunctionLog("fn", 1, fmt.Sprintf("inv%d", i%7), "stdout", fmt.Appendf(nil, "line %d\n", i))
	}
	s.Close()
	s.FunctionLog("fn", 1, "late", "stdout", []byte("after close\n"))
	s.Close()
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatalf("Flush after Close: %v", err)
	}
	again := testStore(t, js, nil)
	if got := read(t, again, Query{Function: "fn"}); len(got) != 100 {
		t.Fatalf("%d lines after a clean close, want 100", len(got))
	}
}

// A full buffer drops lines, counts them and never blocks the writer.
func TestFullBufferDrops(t *testing.T) {
	js := testJS(t)
	s := testStore(t, js, func(c *StoreConfig) { c.MaxBuffered = 10 * entryOverhead })
	for i := range 100 {
		s.FunctionLog("fn", 1, "a", "stdout", fmt.Appendf(nil, "line %d\n", i))
	}
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	kept := len(read(t, s, Query{Function: "fn"}))
	if kept == 0 || kept == 100 || uint64(kept)+s.Dropped() != 100 {
		t.Fatalf("kept %d, dropped %d of 100", kept, s.Dropped())
	}
}

// Messages of older gust still read beside the binary batches: a single
// JSON entry without a newline (before batching) and an NDJSON batch (one
// entry a line, a shared subject's mixing invocations).
func TestReadsOlderMessages(t *testing.T) {
	js := testJS(t)
	s := testStore(t, js, nil)
	at := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	old, _ := json.Marshal(Entry{Time: at, Function: "fn", Version: 1, Invocation: "a", Stream: "stdout", Message: "old"})
	if _, err := js.PublishMsg(ctx(t), &nats.Msg{Subject: subject("fn", "a"), Data: old}); err != nil {
		t.Fatal(err)
	}
	var nd []byte
	for i, inv := range []string{"a", "b", ""} {
		line, _ := json.Marshal(Entry{Time: at.Add(time.Duration(i+1) * time.Second), Function: "fn", Version: 1, Invocation: inv, Stream: "stderr", Message: "nd" + inv})
		nd = append(append(nd, line...), '\n')
	}
	if _, err := js.PublishMsg(ctx(t), &nats.Msg{Subject: sharedSubject("fn"), Data: nd}); err != nil {
		t.Fatal(err)
	}
	s.FunctionLog("fn", 1, "a", "stdout", []byte("new\n"))
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := texts(read(t, s, Query{Function: "fn", Invocation: "a"})); got != "a/stdout:old\na/stderr:nda\na/stdout:new\n" {
		t.Fatalf("invocation a: %q", got)
	}
	if got := texts(read(t, s, Query{Function: "fn", Invocation: "none"})); got != "/stderr:nd\n" {
		t.Fatalf("no invocation: %q", got)
	}
	if got := texts(read(t, s, Query{Function: "fn", Since: at.Add(2 * time.Second)})); got != "b/stderr:ndb\n/stderr:nd\na/stdout:new\n" {
		t.Fatalf("since: %q", got)
	}
}

// A batch that does not parse yields what it holds up to the damage, and
// reading goes on with the next message.
func TestDamagedBatch(t *testing.T) {
	js := testJS(t)
	s := testStore(t, js, nil)
	e := Entry{Time: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC), Function: "fn", Version: 1, Invocation: "a", Stream: "stdout", Message: "kept"}
	b, _ := appendBatchEntry(appendBatchHeader(nil, "fn"), &e, 0)
	b = append(b, 0x01, 0xff) // the start of a second entry, cut
	if _, err := js.PublishMsg(ctx(t), &nats.Msg{Subject: subject("fn", "a"), Data: b}); err != nil {
		t.Fatal(err)
	}
	s.FunctionLog("fn", 1, "a", "stdout", []byte("next\n"))
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := texts(read(t, s, Query{Function: "fn"})); got != "a/stdout:kept\na/stdout:next\n" {
		t.Fatalf("read %q", got)
	}
}

// BenchmarkFunctionLog is what a function pays per line written: the
// hot path only, publishing happens on the store's goroutine.
func BenchmarkFunctionLog(b *testing.B) {
	js := testJS(b)
	s, err := NewStore(context.Background(), js, StoreConfig{Logger: slog.New(slog.DiscardHandler),
		Echo: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	line := []byte("handling 0f9da94dea306c4ecbbf11d3d777b2d0\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.FunctionLog("fn", 1, "0f9da94dea306c4ecbbf11d3d777b2d0", "stderr", line)
		}
	})
	b.StopTimer()
	if err := s.Flush(ctx(b)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStoreCPU reports the CPU time the whole process (store,
// NATS client and embedded server) spends per line stored, for lines of
// many one-line invocations and of one chatty invocation. It is the cost
// that competes with functions for the machine's cores.
func BenchmarkStoreCPU(b *testing.B) {
	for _, c := range []struct {
		name string
		inv  func(i int) string
	}{
		{"line-per-invocation", func(i int) string { return fmt.Sprintf("%032x", i) }},
		{"chatty-invocation", func(int) string { return "0f9da94dea306c4ecbbf11d3d777b2d0" }},
	} {
		b.Run(c.name, func(b *testing.B) {
			js := testJS(b)
			s, err := NewStore(context.Background(), js, StoreConfig{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = c.inv(i)
			}
			line := []byte("handling a request with a line of ordinary length\n")
			runtime.GC()
			before := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				s.FunctionLog("fn", 1, ids[i], "stderr", line)
				if i%64 == 63 {
					time.Sleep(time.Millisecond) // a function's pace, not a flood
				}
			}
			if err := s.Flush(ctx(b)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/line")
			if s.Dropped() != 0 {
				b.Fatalf("dropped %d", s.Dropped())
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
