package async

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gustfaas/gust"
)

// appendMeta must say what encoding/json says: the worker decodes it with
// encoding/json, and so does anything that reads events written either way.
func FuzzEventMeta(f *testing.F) {
	f.Add("0123abcd", "fn", "", 0, "POST", "/", "", "Content-Type", "text/plain", "async", int64(1_800_000_000_123_456_789), "", 0, true)
	f.Add("x_y-z", "hello", "live", 3, "PUT", "/a b/\"q\"", "a=1&b=<2>", "X-Odd\x7f", "tab\there\nnew\x00\xff\xfeé€😀\u2028", "cron", int64(-5), "https://cb.example/x?y=1", 2, false)
	f.Add("id", "f", "7", -1, "", "", "", "", "", "", int64(0), "", -3, false)
	f.Fuzz(func(t *testing.T, id, function, ref string, version int, method, path, query, hk, hv, trigger string, nanos int64, callback string, redrives int, seqSuffix bool) {
		ev := &Event{
			ID: id, Function: function, Ref: ref, Version: version, Method: method, Path: path, Query: query,
			Trigger: trigger, AcceptedAt: time.Unix(0, nanos).UTC(), CallbackURL: callback, Redrives: redrives, SeqSuffix: seqSuffix,
		}
		if hk != "" {
			ev.Header = http.Header{hk: {hv, hv + hk}, "Empty": {}, "Nil": nil}
		}
		got, err := ev.appendMeta(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var g, w Event
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("appendMeta wrote invalid JSON %q: %v", got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("appendMeta decodes to\n%+v\nencoding/json to\n%+v", g, w)
		}
		for _, c := range got {
			if c == '\n' {
				t.Fatalf("metadata %q has a newline, which ends it in a stored event", got)
			}
		}
	})
}

func TestEventDataRoundTrip(t *testing.T) {
	ev := &Event{
		ID: "abc", Function: "fn", Method: "POST", Path: "/x", Trigger: "async",
		Header:     http.Header{"A": {"1\n2"}},
		AcceptedAt: time.Date(2026, 11, 26, 18, 0, 0, 1, time.UTC), Body: []byte("line one\nline two\n"),
	}
	m, err := ev.msg("s")
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEvent(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("decoded %+v, want %+v", got, ev)
	}
	if _, err := decodeEvent(nil, []byte("no metadata")); err == nil {
		t.Fatal("decoded a message that is not an event")
	}
	ev.AcceptedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := ev.msg("s"); err == nil {
		t.Fatal("encoded a time encoding/json refuses")
	}
}

// An event stored by an earlier version (metadata in a Gust-Event header,
// the body as the data) still runs after an upgrade.
func TestEarlierFormatRuns(t *testing.T) {
	h := newHarness(t, "", nil)
	h.deploy("echo", gust.Spec{})
	ev := &Event{
		ID: "earlier-format-1", Function: "echo", Method: "POST", Path: "/", Trigger: "async",
		AcceptedAt: time.Now(),
	}
	meta, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(eventSubject(ev.Function, ev.ID))
	m.Header.Set(hdrEvent, string(meta))
	m.Data = []byte("queued before the upgrade")
	if _, err := h.a.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if s := h.waitStatus(ev.ID, StatusSucceeded); s.Response.Body != "queued before the upgrade" {
		t.Fatalf("status %+v", s)
	}
}
