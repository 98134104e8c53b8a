package async

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
)

// Message headers of stored events. The event's body travels as the message
// data, unencoded; everything else as JSON in one header.
const (
	hdrEvent = "Gust-Event"
	hdrDead  = "Gust-Dead"
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
	Query       string      `json:"query,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	Trigger     string      `json:"trigger"` // async, cron, stream...
	AcceptedAt  time.Time   `json:"acceptedAt"`
	CallbackURL string      `json:"callbackUrl,omitempty"`
	Redrives    int         `json:"redrives,omitempty"`
	Body        []byte      `json:"-"`
}

// Dead is why an event was dead-lettered.
type Dead struct {
	Error    string    `json:"error"`
	Code     string    `json:"code,omitempty"`
	Attempts int       `json:"attempts"`
	DeadAt   time.Time `json:"deadAt"`
}

// eventSubject is where an event waits in StreamAsync: the function, then
// the invocation id, so that a status lookup finds a queued event by its id
// alone (SubjectAsync + "*." + id) before any status record exists.
func eventSubject(function, id string) string {
	return SubjectAsync + function + "." + id
}

func (ev *Event) msg(subject string) (*nats.Msg, error) {
	meta, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	m := nats.NewMsg(subject)
	m.Header.Set(hdrEvent, string(meta))
	m.Data = ev.Body
	return m, nil
}

func decodeEvent(h nats.Header, data []byte) (*Event, error) {
	meta := h.Get(hdrEvent)
	if meta == "" {
		return nil, fmt.Errorf("message has no %s header", hdrEvent)
	}
	var ev Event
	if err := json.Unmarshal([]byte(meta), &ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	if ev.ID == "" || ev.Function == "" {
		return nil, fmt.Errorf("event lacks id or function")
	}
	ev.Body = data
	return &ev, nil
}
