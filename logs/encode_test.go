package logs

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// A batch gives back every entry as written: any bytes in a message or an
// id, every stream, versions, and the instant of each line, whatever its
// order or zone.
func TestBatchRoundTrip(t *testing.T) {
	msgs := []string{
		"", "plain line", `{"json":"in a log", "n": 1}`, "tab\there\r\x00\x01\x1f\x7f",
		"<script>&amp;</script>", "héllo wörld ✓ 日本", "bad utf8 \xff\xfe end", "line\u2028sep\u2029",
		"back\\slash \"quoted\"", "\b\f", string([]byte{0xe2, 0x82}), string(make([]byte, MaxLine)),
	}
	base := time.Date(2026, 11, 26, 18, 0, 0, 123456789, time.FixedZone("x", 3600))
	var in []Entry
	for i, m := range msgs {
		for j, st := range []string{"stdout", "stderr", StreamGust, "other"} {
			in = append(in, Entry{
				Time:     base.Add(time.Duration((i*7+j*3)%11-5) * time.Millisecond), // not in order
				Function: "fn-1", Version: 1 + i*1000, Invocation: []string{"", "0f9da94dea306c4ecbbf11d3d777b2d0", "a\x00b"}[(i+j)%3],
				Stream: st, Message: m,
			})
		}
	}
	b := appendBatchHeader(nil, "fn-1")
	prev := int64(0)
	for i := range in {
		before := len(b)
		b, prev = appendBatchEntry(b, &in[i], prev)
		if len(b)-before > batchEntrySize(&in[i]) {
			t.Fatalf("entry %d took %d bytes, over its bound %d", i, len(b)-before, batchEntrySize(&in[i]))
		}
	}
	var out []Entry
	if err := eachBatchEntry(b, func(e *Entry) error { out = append(out, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d entries, wrote %d", len(out), len(in))
	}
	for i := range in {
		w, g := in[i], out[i]
		if !g.Time.Equal(w.Time) || g.Function != w.Function || g.Version != w.Version || g.Invocation != w.Invocation || g.Stream != w.Stream || g.Message != w.Message {
			t.Fatalf("entry %d: got %+v, want %+v", i, g, w)
		}
		if _, err := json.Marshal(g); err != nil {
			t.Fatalf("entry %d does not encode as JSON: %v", i, err)
		}
	}
	// A cut batch is an error, never a panic or a made-up entry.
	for n := len(batchMagic); n < len(b); n += 7 {
		_ = eachBatchEntry(b[:n], func(*Entry) error { return nil })
	}
	stop := errors.New("stop")
	if err := eachBatchEntry(b, func(*Entry) error { return stop }); err != stop {
		t.Fatalf("fn's error: %v", err)
	}
}

func FuzzBatch(f *testing.F) {
	f.Add("hello", "inv", "stdout", int64(1_800_000_000_000_000_005))
	f.Add("\xff<>&\u2028", "", "x", int64(-5))
	f.Fuzz(func(t *testing.T, msg, inv, stream string, at int64) {
		e := Entry{Time: time.Unix(0, at), Function: "f", Version: 3, Invocation: inv, Stream: stream, Message: msg}
		b, _ := appendBatchEntry(appendBatchHeader(nil, "f"), &e, 0)
		b, _ = appendBatchEntry(b, &e, at)
		n := 0
		err := eachBatchEntry(b, func(g *Entry) error {
			n++
			if !g.Time.Equal(e.Time) || g.Invocation != inv || g.Stream != stream || g.Message != msg || g.Version != 3 || g.Function != "f" {
				t.Errorf("got %+v, want %+v", *g, e)
			}
			return nil
		})
		if err != nil || n != 2 {
			t.Fatalf("read %d entries, err %v", n, err)
		}
		// Reading any bytes never panics.
		_ = eachBatchEntry(append([]byte(batchMagic), msg...), func(*Entry) error { return nil })
	})
}
