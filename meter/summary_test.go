package meter

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// The summary a message carries must add to each hour exactly what
// decoding its records would.
func TestSummaryMatchesRecords(t *testing.T) {
	base := time.Date(2026, 3, 4, 10, 59, 59, 0, time.UTC)
	statuses := []string{gust.StatusOK, gust.StatusError, gust.StatusTimeout, gust.StatusThrottled, gust.StatusOOM, "odd"}
	var batch []Record
	for i := range 500 {
		batch = append(batch, NewRecord(&gust.Invocation{
			ID: "x", Function: "alpha", Version: 1, Trigger: "http",
			Start:    base.Add(time.Duration(i) * 7 * time.Millisecond).In(time.FixedZone("X", 5*3600+1800)),
			Duration: time.Duration(i*37) * time.Microsecond, MemoryMB: 128 + i%3, Cold: i%4 == 0,
			Status: statuses[i%len(statuses)],
		}))
	}
	m := &Meter{maxMsgBytes: maxMsgBytes}
	var free [][]byte
	msgs := m.encode(batch, &free)
	if len(msgs) != 1 || msgs[0].noSum || len(msgs[0].sums) != 2 {
		t.Fatalf("want one message with a summary of 2 hours, got %d messages: %+v", len(msgs), msgs[0].sums)
	}
	data, err := messageRecords(msgs[0].encoding, msgs[0].data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]aggregate{}
	if bad, err := decodeRecords(data, func(r *Record) {
		h := r.Start.UTC().Truncate(time.Hour).Unix()
		a := want[h]
		a.add(r)
		want[h] = a
	}); bad != 0 {
		t.Fatal(err)
	}
	sums, ok := parseSums(formatSums(msgs[0].sums))
	if !ok {
		t.Fatalf("summary %q does not parse", formatSums(msgs[0].sums))
	}
	got := map[int64]aggregate{}
	for _, s := range sums {
		got[s.hour] = s.agg
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary %+v, records add %+v", got, want)
	}
}

func TestSummaryOnlyWhenExact(t *testing.T) {
	m := &Meter{maxMsgBytes: maxMsgBytes}
	var free [][]byte
	start := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	// A record without a start lands in the hour the stream stored it,
	// which the publisher cannot know; a name that is not a subject
	// token shares the "_" subject.
	for _, batch := range [][]Record{
		{NewRecord(&gust.Invocation{Function: "alpha", Start: start}), NewRecord(&gust.Invocation{Function: "alpha"})},
		{NewRecord(&gust.Invocation{Function: "Bad.Name", Start: start})},
		{NewRecord(&gust.Invocation{Function: "alpha", Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})},
	} {
		msgs := m.encode(batch, &free)
		if len(msgs) != 1 || !msgs[0].noSum {
			t.Errorf("%+v: want one message without a summary", batch)
		}
	}
	for _, bad := range []string{"", "1", "2;3600,1,0,0,0,1,1,1", "1;3600,1,0,0,0,1,1", "1;3601,1,0,0,0,1,1,1", "1;3600,-1,0,0,0,1,1,1", "1;3600,1,0,0,0,1,1,x"} {
		if _, ok := parseSums(bad); ok {
			t.Errorf("parseSums(%q) accepted", bad)
		}
	}
}

func TestCompressRoundTrip(t *testing.T) {
	raw := bytes.Repeat([]byte(`{"id":"abc","function":"alpha","status":"ok"}`+"\n"), 200)
	z, ok := compress(nil, raw)
	if !ok || len(z) >= len(raw)/4 {
		t.Fatalf("compressed %d bytes to %d (ok %v)", len(raw), len(z), ok)
	}
	back, err := messageRecords("s2", z)
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("round trip: err %v, equal %v", err, bytes.Equal(back, raw))
	}
	if _, ok := compress(make([]byte, 0, 8), []byte("x")); ok {
		t.Error("a message that does not shrink was compressed")
	}
	if _, err := messageRecords("s2", []byte("not s2")); err == nil {
		t.Error("garbage decoded")
	}
	if _, err := messageRecords("gzip", raw); err == nil {
		t.Error("unknown encoding accepted")
	}
}
