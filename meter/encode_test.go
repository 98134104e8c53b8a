package meter

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

func TestRecordJSONRoundTrip(t *testing.T) {
	start := time.Date(2026, 3, 4, 10, 20, 30, 123456789, time.UTC)
	recs := []Record{
		NewRecord(&gust.Invocation{ID: "a1", Function: "hello", Version: 3, Trigger: "http", Start: start, Duration: 1500 * time.Microsecond, MemoryMB: 128, Cold: true, Status: gust.StatusOK}),
		NewRecord(&gust.Invocation{ID: "a2", Function: "hello", Version: 3, Start: start.In(time.FixedZone("x", 3600)), Duration: time.Hour, MemoryMB: 4096, Status: gust.StatusTimeout}),
		NewRecord(&gust.Invocation{ID: "t", Function: "hello", Start: start, Duration: time.Second, MemoryMB: 128, Status: gust.StatusThrottled}),
		{ID: "quote\" back\\slash \n\t\r\x01 \u2028 é 日本", Function: "x", Trigger: "cron \"*/5\"", Status: "weird\x7f", GBSeconds: 1e-300},
		{ID: "bad utf8 \xff\xfe end", Function: "Not.Valid", GBSeconds: 1.5e21, Version: -1},
		{}, // zero time, empty strings
	}
	var msg []byte
	for i := range recs {
		if i > 0 {
			msg = append(msg, '\n')
		}
		line := recs[i].appendJSON(nil)
		if !json.Valid(line) {
			t.Fatalf("record %d: invalid JSON %s", i, line)
		}
		// What encoding/json reads from the line is what it reads from
		// its own encoding of the record.
		var got, want Record
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		std, _ := json.Marshal(&recs[i])
		_ = json.Unmarshal(std, &want)
		if !reflect.DeepEqual(got, want) || !got.Start.Equal(recs[i].Start) {
			t.Errorf("record %d:\n got %+v\nwant %+v\nline %s", i, got, want, line)
		}
		msg = append(msg, line...)
	}
	// The message decodes to the same records, by the fast path or not.
	var got []Record
	bad, err := decodeRecords(msg, func(r *Record) { got = append(got, *r) })
	if bad != 0 || err != nil || len(got) != len(recs) {
		t.Fatalf("decode: %d records, %d bad, err %v", len(got), bad, err)
	}
	for i := range got {
		var want Record
		_ = json.Unmarshal(recs[i].appendJSON(nil), &want)
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("decoded %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
}

func TestFastDecoderAgreesWithEncodingJSON(t *testing.T) {
	lines := []string{
		`{"id":"a","function":"f","version":2,"start":"2026-03-04T10:00:00.5Z","durationUs":7,"billedMs":1,"memoryMB":128,"gbSeconds":0.000125,"cold":false,"status":"ok"}`,
		` { "status" : "error" , "id":"b", "cold":true } `,
		`{"id":"esc\"aped","function":"f"}`,   // escape: slow path
		`{"ID":"upper","Function":"f"}`,       // case-insensitive keys: slow path
		`{"id":"a","extra":{"nested":[1,2]}}`, // unknown field: slow path
		`{"id":null,"version":null}`,          // null: slow path
		`{"id":"a","gbSeconds":1e-3,"version":-4}`,
		`{}`,
	}
	var d fastDecoder
	for _, l := range lines {
		var fast, std Record
		ok := d.decode([]byte(l), &fast)
		if err := json.Unmarshal([]byte(l), &std); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if ok && !reflect.DeepEqual(fast, std) {
			t.Errorf("%s:\nfast %+v\n std %+v", l, fast, std)
		}
	}
	for _, l := range []string{`{"id":"a"`, `{"id":"a",}`, `{"version":1.5}`, `{"gbSeconds":NaN}`, `{"gbSeconds":0x10}`, `{"cold":yes}`, `{"start":"yesterday"}`, `[1]`, `{"id":"a"} x`} {
		var r Record
		if d.decode([]byte(l), &r) {
			t.Errorf("%s: fast path accepted what it must leave to encoding/json", l)
		}
	}
	bad, err := decodeRecords([]byte("{\"id\":\"a\"}\nnot json\n\n{\"id\":\"b\"}\n"), func(*Record) {})
	if bad != 1 || err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("malformed line: bad %d err %v", bad, err)
	}
}

func BenchmarkEncodeDecode(b *testing.B) {
	r := NewRecord(&gust.Invocation{ID: "0123456789abcdefghijkl", Function: "hello", Version: 3, Trigger: "http", Start: time.Now(), Duration: 1500 * time.Microsecond, MemoryMB: 128, Status: gust.StatusOK})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = r.appendJSON(buf[:0])
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&r)
		}
	})
	line := r.appendJSON(nil)
	b.Run("fastDecode", func(b *testing.B) {
		b.ReportAllocs()
		var d fastDecoder
		for b.Loop() {
			var out Record
			if !d.decode(line, &out) {
				b.Fatal("slow path")
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out Record
			_ = json.Unmarshal(line, &out)
		}
	})
}
