package logs

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// appendEntry writes what json.Encoder writes, so batches read the same
// whichever wrote them.
func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	msgs := []string{
		"", "plain line", `{"json":"in a log", "n": 1}`, "tab\there\r\x00\x01\x1f\x7f",
		"<script>&amp;</script>", "héllo wörld ✓ 日本", "bad utf8 \xff\xfe end", "line\u2028sep\u2029",
		"back\\slash \"quoted\"", "\b\f", string([]byte{0xe2, 0x82}),
	}
	times := []time.Time{
		time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 26, 18, 0, 0, 123456789, time.FixedZone("x", 3600)),
		time.Now(),
	}
	for _, m := range msgs {
		for _, tm := range times {
			for _, inv := range []string{"", "0f9da94dea306c4ecbbf11d3d777b2d0"} {
				e := Entry{Time: tm, Function: "fn-1", Version: 12, Invocation: inv, Stream: "stderr", Message: m}
				var want bytes.Buffer
				if err := json.NewEncoder(&want).Encode(&e); err != nil {
					t.Fatal(err)
				}
				if got := appendEntry(nil, &e); !bytes.Equal(got, want.Bytes()) {
					t.Errorf("appendEntry(%q)\n got %s\nwant %s", m, got, want.Bytes())
				}
			}
		}
	}
}

func FuzzAppendEntry(f *testing.F) {
	f.Add("hello", "inv")
	f.Add("\xff<>&\u2028", "")
	f.Fuzz(func(t *testing.T, msg, inv string) {
		e := Entry{Time: time.Unix(1_800_000_000, 5).UTC(), Function: "f", Version: 1, Invocation: inv, Stream: "stdout", Message: msg}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(&e); err != nil {
			t.Skip()
		}
		if got := appendEntry(nil, &e); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("appendEntry(%q)\n got %s\nwant %s", msg, got, want.Bytes())
		}
	})
}
