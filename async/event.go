package async

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gustfaas/gust/internal/jsonstr"
)

// How an event is stored. The message data is the event's metadata as one
// line of JSON, a newline, then the body unencoded. The message has no
// NATS headers: the server looks for each of its own headers (message id,
// expected sequence, TTL, batch, ...) in a message's header block, once
// per message, so metadata kept there cost it a scan of a few hundred bytes
// many times per accept. JSON never contains a raw newline, so the first
// one ends the metadata.
//
// Events stored by earlier versions carry the metadata in a Gust-Event
// header and the body as the data; decodeEvent reads both, so an upgrade
// runs what was queued before it.
const (
	hdrEvent = "Gust-Event" // the earlier format's metadata
	hdrDead  = "Gust-Dead"  // a dead letter's Dead, as JSON
)

// Event is an invocation waiting to run: the HTTP request the function will
// see and where it came from.
type Event struct {
	ID          string      `json:"id"`
	Function    string      `json:"function"`
	Ref         string      `json:"ref,omitempty"`     // alias or version; "" is live
	Version     int         `json:"version,omitempty"` // resolved at accept; the worker resolves Ref again
	Method      string      `json:"method"`
	Path        string      `json:"path"`
	RawPath     string      `json:"rawPath,omitempty"` // Path as the client escaped it, when that differs
	Query       string      `json:"query,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	Trigger     string      `json:"trigger"` // async, cron, stream...
	AcceptedAt  time.Time   `json:"acceptedAt"`
	CallbackURL string      `json:"callbackUrl,omitempty"`
	Redrives    int         `json:"redrives,omitempty"`
	// SeqSuffix marks an event stored under its function's subject whose
	// invocation id is ID + "-" + its stream sequence (see seqInvocationID).
	// A worker completes the id and clears the mark, so that a dead letter
	// or a redrive carries the id the caller was given.
	SeqSuffix bool   `json:"seqSuffix,omitempty"`
	Body      []byte `json:"-"`
}

// Dead is why an event was dead-lettered.
type Dead struct {
	Error    string    `json:"error"`
	Code     string    `json:"code,omitempty"`
	Attempts int       `json:"attempts"`
	DeadAt   time.Time `json:"deadAt"`
}

// eventSubject is where an event with a chosen id waits in StreamAsync:
// the function, then the invocation id, so that a status lookup finds a
// queued event by its id alone (SubjectAsync + "*." + id) before any status
// record exists. Events whose id ends in their stream sequence (SeqSuffix)
// need no subject of their own: they wait under SubjectAsync + function.
func eventSubject(function, id string) string {
	return SubjectAsync + function + "." + id
}

// subject is where ev waits in StreamAsync.
//
// A subject per event costs the server a new entry in two subject trees
// (the stream's and the message block's) per message, and the trees grow
// with the queue; a shared subject costs a lookup and a counter. Measured
// with bench/async's BenchmarkStoreVariants, unique-data against
// shared-data: 3 to 13 µs of CPU per stored event, a fifth of the store.
func (ev *Event) subject() string {
	if ev.SeqSuffix {
		return SubjectAsync + ev.Function
	}
	return eventSubject(ev.Function, ev.ID)
}

// seqInvocationID is the invocation id of a SeqSuffix event: the id it
// was stored with, "-", and the stream sequence JetStream gave it. The
// sequence is only known from the store's ack, so the id is completed then
// (for the 202) and by the worker (from the message's metadata), and a
// status lookup reads the event by its sequence, checking the first part.
func seqInvocationID(id string, seq uint64) string {
	b := make([]byte, 0, len(id)+21)
	b = append(b, id...)
	b = append(b, '-')
	return string(strconv.AppendUint(b, seq, 10))
}

// splitSeqID splits an id that may be a seqInvocationID into its stored id
// and the sequence; ok is false if it cannot be one.
func splitSeqID(id string) (stored string, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 || i == len(id)-1 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || seq == 0 {
		return "", 0, false
	}
	return id[:i], seq, true
}

// msg is ev as a message to subject, in a buffer of its own.
func (ev *Event) msg(subject string) (*nats.Msg, error) {
	data, err := ev.appendData(make([]byte, 0, ev.dataSizeHint()))
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: subject, Data: data}, nil
}

// dataBufs recycles the data buffers of accepts: nats.go copies a message
// into its write buffer before PublishMsgAsync returns, and keeps a
// reference only to publish it again while its ack is pending, so a buffer
// is free again once the ack (or its error) is in.
var dataBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledData bounds the buffers kept for reuse: a rare large body must
// not pin its buffer.
const maxPooledData = 64 << 10

func getDataBuf(n int) *[]byte {
	p := dataBufs.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, 0, n)
	}
	*p = (*p)[:0]
	return p
}

func putDataBuf(p *[]byte) {
	if cap(*p) <= maxPooledData {
		dataBufs.Put(p)
	}
}

func (ev *Event) dataSizeHint() int {
	n := 192 + len(ev.ID) + len(ev.Function) + len(ev.Ref) + len(ev.Method) + len(ev.Path) + len(ev.RawPath) +
		len(ev.Query) + len(ev.Trigger) + len(ev.CallbackURL) + len(ev.Body)
	for k, vs := range ev.Header {
		n += len(k) + 8
		for _, v := range vs {
			n += len(v) + 3
		}
	}
	return n
}

// appendData appends ev as stored: its metadata, a newline, its body.
func (ev *Event) appendData(b []byte) ([]byte, error) {
	b, err := ev.appendMeta(b)
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	return append(b, ev.Body...), nil
}

// appendMeta appends ev's metadata as JSON that encoding/json decodes to
// the same Event as its own encoding of ev (fields in declaration order,
// the same omitempty rules, times in RFC 3339 with nanoseconds). It is on
// the path of every accept, where encoding/json's reflection and its
// sorting of the header's keys cost more than the rest of the encoding.
func (ev *Event) appendMeta(b []byte) ([]byte, error) {
	if y := ev.AcceptedAt.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("encode event %s: accepted at %v, outside years 0 to 9999", ev.ID, ev.AcceptedAt)
	}
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, ev.ID)
	b = append(b, `,"function":`...)
	b = jsonstr.Append(b, ev.Function)
	if ev.Ref != "" {
		b = append(b, `,"ref":`...)
		b = jsonstr.Append(b, ev.Ref)
	}
	if ev.Version != 0 {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(ev.Version), 10)
	}
	b = append(b, `,"method":`...)
	b = jsonstr.Append(b, ev.Method)
	b = append(b, `,"path":`...)
	b = jsonstr.Append(b, ev.Path)
	if ev.RawPath != "" {
		b = append(b, `,"rawPath":`...)
		b = jsonstr.Append(b, ev.RawPath)
	}
	if ev.Query != "" {
		b = append(b, `,"query":`...)
		b = jsonstr.Append(b, ev.Query)
	}
	if len(ev.Header) > 0 {
		b = append(b, `,"header":{`...)
		first := true
		for k, vs := range ev.Header {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = jsonstr.Append(b, k)
			if vs == nil {
				b = append(b, ":null"...)
				continue
			}
			b = append(b, ":["...)
			for i, v := range vs {
				if i > 0 {
					b = append(b, ',')
				}
				b = jsonstr.Append(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `,"trigger":`...)
	b = jsonstr.Append(b, ev.Trigger)
	b = append(b, `,"acceptedAt":"`...)
	b = ev.AcceptedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if ev.CallbackURL != "" {
		b = append(b, `,"callbackUrl":`...)
		b = jsonstr.Append(b, ev.CallbackURL)
	}
	if ev.Redrives != 0 {
		b = append(b, `,"redrives":`...)
		b = strconv.AppendInt(b, int64(ev.Redrives), 10)
	}
	if ev.SeqSuffix {
		b = append(b, `,"seqSuffix":true`...)
	}
	return append(b, '}'), nil
}

// decodeEvent reads an event stored in either format (see hdrEvent).
func decodeEvent(h nats.Header, data []byte) (*Event, error) {
	var meta, body []byte
	if old := h.Get(hdrEvent); old != "" {
		meta, body = []byte(old), data
	} else {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, fmt.Errorf("message is not an event: no metadata line and no %s header", hdrEvent)
		}
		meta, body = data[:i], data[i+1:]
	}
	var ev Event
	if err := json.Unmarshal(meta, &ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	if ev.ID == "" || ev.Function == "" {
		return nil, fmt.Errorf("event lacks id or function")
	}
	ev.Body = body
	return &ev, nil
}
