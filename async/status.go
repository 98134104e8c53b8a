package async

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/gateway"
	"github.com/gustfaas/gust/httperr"
)

// Invocation statuses.
const (
	StatusQueued       = "queued"
	StatusRunning      = "running"
	StatusSucceeded    = "succeeded"
	StatusFailed       = "failed"
	StatusDeadLettered = "dead-lettered"
	StatusCanceled     = "canceled"
)

// Kinds of invocation a Status describes.
const (
	KindAsync = "async" // stored, queued and run by a worker (/async, cron, webhooks)
	KindSync  = "sync"  // run while its caller waited (/fn, NATS triggers)
)

// Status is what GET /v1/invocations/ID answers. A sync invocation (Kind
// KindSync) has the same shape: it ended succeeded or failed in its one
// attempt, accepted and started when it began, with DurationMs, Cold and,
// when it answered, HTTPStatus; its response body is not kept.
type Status struct {
	ID            string     `json:"id"`
	Kind          string     `json:"kind"` // KindAsync or KindSync
	Function      string     `json:"function"`
	Ref           string     `json:"ref,omitempty"`
	Version       int        `json:"version,omitempty"` // of the last attempt, or resolved at accept
	Trigger       string     `json:"trigger"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	Error         string     `json:"error,omitempty"` // of the last failed attempt
	Code          string     `json:"code,omitempty"`
	AcceptedAt    time.Time  `json:"acceptedAt"`
	StartedAt     *time.Time `json:"startedAt,omitempty"`
	FinishedAt    *time.Time `json:"finishedAt,omitempty"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	Response      *Result    `json:"response,omitempty"`
	// Of a sync invocation: how long it ran, whether it started an
	// instance (none for a call no instance ran: throttled, or none could
	// be had), and the status the function answered.
	DurationMs float64 `json:"durationMs,omitempty"`
	Cold       *bool   `json:"cold,omitempty"`
	HTTPStatus int     `json:"httpStatus,omitempty"`
}

// Result is the function's answer kept in a status.
type Result struct {
	Status  int         `json:"status"`
	Headers http.Header `json:"headers,omitempty"`
	// Body is the text of the body if it is UTF-8, else its base64
	// (Encoding says which).
	Body      string `json:"body"`
	Encoding  string `json:"encoding"` // "text" or "base64"
	Size      int    `json:"size"`     // of the whole body
	Truncated bool   `json:"truncated,omitempty"`
}

// Final reports whether s is an end state.
func (s *Status) Final() bool {
	switch s.Status {
	case StatusSucceeded, StatusFailed, StatusDeadLettered, StatusCanceled:
		return true
	}
	return false
}

func newResult(resp *gust.Response, limit int) *Result {
	r := &Result{Status: resp.Status, Headers: resp.Header, Size: len(resp.Body)}
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	body := resp.Body
	if len(body) > limit {
		body, r.Truncated = body[:limit], true
		// Do not cut a UTF-8 text in the middle of a rune.
		for i := 0; i < utf8.UTFMax && len(body) > 0 && !utf8.Valid(body); i++ {
			body = body[:len(body)-1]
		}
	}
	if utf8.Valid(body) {
		r.Body, r.Encoding = string(body), "text"
	} else {
		r.Body, r.Encoding = base64.StdEncoding.EncodeToString(body), "base64"
	}
	return r
}

// validID reports whether id is 1 to 64 letters, digits, '_' and '-': what
// an invocation id may be (a KV key and a subject token, never a path).
func validID(id string) bool { return gateway.ClientInvocationID(id) }

func statusKey(id string) string { return id }

// getStatus returns the status of id and its KV revision. Errors:
// ENOTFOUND.
func (a *Async) getStatus(ctx context.Context, id string) (*Status, uint64, error) {
	if !validID(id) {
		return nil, 0, gust.Errorf(gust.ENOTFOUND, "no invocation %q", id)
	}
	e, err := a.status.Get(ctx, statusKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, gust.Errorf(gust.ENOTFOUND, "no invocation %q (statuses are kept for %s)", id, a.cfg.StatusTTL)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get status of %s: %w", id, err)
	}
	var s Status
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, 0, fmt.Errorf("decode status of %s: %w", id, err)
	}
	if s.Kind == "" {
		s.Kind = KindAsync // stored before statuses said
	}
	return &s, e.Revision(), nil
}

// queuedStatus is the status of ev before any attempt.
func queuedStatus(ev *Event) *Status {
	return &Status{
		ID: ev.ID, Kind: KindAsync, Function: ev.Function, Ref: ev.Ref, Version: ev.Version, Trigger: ev.Trigger,
		Status: StatusQueued, AcceptedAt: ev.AcceptedAt,
	}
}

// currentStatus returns the status of id with its KV revision or, for an
// event accepted but not yet taken by a worker (which has no record), a
// "queued" status read from the event in the stream, with revision 0. A
// worker records its status before it acks the event, so one of the two
// always exists; the record is read again after a miss in the stream
// because the worker may have done both between the two reads. Errors:
// ENOTFOUND.
func (a *Async) currentStatus(ctx context.Context, id string) (*Status, uint64, error) {
	if !validID(id) {
		return nil, 0, gust.Errorf(gust.ENOTFOUND, "no invocation %q", id)
	}
	for range 2 {
		s, rev, err := a.getStatus(ctx, id)
		if gust.ErrorCode(err) != gust.ENOTFOUND {
			return s, rev, err
		}
		ev, err := a.queuedEvent(ctx, id)
		if err == nil {
			return queuedStatus(ev), 0, nil
		}
		if gust.ErrorCode(err) != gust.ENOTFOUND {
			return nil, 0, err
		}
	}
	return nil, 0, gust.Errorf(gust.ENOTFOUND, "no invocation %q (statuses are kept for %s)", id, a.cfg.StatusTTL)
}

// queuedEvent reads the event of invocation id from the stream. Errors:
// ENOTFOUND when it is not there (never accepted, or done with).
func (a *Async) queuedEvent(ctx context.Context, id string) (*Event, error) {
	// An id ending in a sequence names the message by it; the stored
	// part must match, or the id is not that event's (an id chosen
	// elsewhere may end in digits too, and is looked up by subject).
	if stored, seq, ok := splitSeqID(id); ok {
		m, err := a.stream.GetMsg(ctx, seq)
		switch {
		case err == nil:
			if ev, err := decodeEvent(m.Header, m.Data); err == nil && ev.SeqSuffix && ev.ID == stored && m.Subject == ev.subject() {
				ev.ID, ev.SeqSuffix = id, false
				return ev, nil
			}
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, fmt.Errorf("looking up the event of %s: %w", id, err)
		}
	}
	m, err := a.stream.GetLastMsgForSubject(ctx, SubjectAsync+"*."+id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up the event of %s: %w", id, err)
	}
	ev, err := decodeEvent(m.Header, m.Data)
	if err != nil {
		return nil, fmt.Errorf("event of %s: %w", id, err)
	}
	return ev, nil
}

// createStatus stores s if no status of its id exists; false means one did.
func (a *Async) createStatus(ctx context.Context, s *Status) (bool, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return false, fmt.Errorf("encode status: %w", err)
	}
	if _, err := a.status.Create(ctx, statusKey(s.ID), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		return false, fmt.Errorf("create status of %s: %w", s.ID, err)
	}
	return true, nil
}

// updateStatus writes s if the stored revision is still rev; rev 0 means
// no record exists yet (a queued event read from the stream), and s is
// created. Errors: ECONFLICT if another writer won.
func (a *Async) updateStatus(ctx context.Context, s *Status, rev uint64) (uint64, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return 0, fmt.Errorf("encode status: %w", err)
	}
	var n uint64
	if rev == 0 {
		n, err = a.status.Create(ctx, statusKey(s.ID), b)
	} else {
		n, err = a.status.Update(ctx, statusKey(s.ID), b, rev)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return 0, gust.WrapError(gust.ECONFLICT, err, "invocation %s changed meanwhile", s.ID)
		}
		return 0, fmt.Errorf("update status of %s: %w", s.ID, err)
	}
	return n, nil
}

// putStatus writes s unconditionally.
func (a *Async) putStatus(ctx context.Context, s *Status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	if _, err := a.status.Put(ctx, statusKey(s.ID), b); err != nil {
		return fmt.Errorf("put status of %s: %w", s.ID, err)
	}
	return nil
}

// Status returns the status of an invocation: an async one, or else a
// sync one that Config.Sync finds. Errors: ENOTFOUND.
func (a *Async) Status(ctx context.Context, id string) (*Status, error) {
	s, _, err := a.currentStatus(ctx, id)
	if gust.ErrorCode(err) != gust.ENOTFOUND {
		return s, err
	}
	if sync, serr := a.syncStatus(ctx, id); serr == nil || gust.ErrorCode(serr) != gust.ENOTFOUND {
		return sync, serr
	}
	return nil, err
}

// SyncFinder finds the record of an invocation that was not stored as an
// async event; the meter, which records every invocation, is one.
// Errors: ENOTFOUND.
type SyncFinder interface {
	Invocation(ctx context.Context, id string) (*gust.Invocation, error)
}

// syncStatus is the status of a sync invocation id, from Config.Sync.
// Errors: ENOTFOUND, also for the record of an event that came through
// the async stream, whose status has expired: it is not a sync call.
func (a *Async) syncStatus(ctx context.Context, id string) (*Status, error) {
	if a.cfg.Sync == nil || !validID(id) {
		return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q", id)
	}
	inv, err := a.cfg.Sync.Invocation(ctx, id)
	if err != nil {
		return nil, err
	}
	switch inv.Trigger {
	case "async", "cron", "webhook":
		return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q (statuses are kept for %s)", id, a.cfg.StatusTTL)
	}
	return newSyncStatus(inv), nil
}

// newSyncStatus describes a finished sync invocation in Status's shape.
func newSyncStatus(inv *gust.Invocation) *Status {
	start, end := inv.Start, inv.Start.Add(inv.Duration)
	s := &Status{
		ID: inv.ID, Kind: KindSync, Function: inv.Function, Version: inv.Version, Trigger: inv.Trigger,
		Status: StatusSucceeded, Attempts: 1, AcceptedAt: start, StartedAt: &start, FinishedAt: &end,
		DurationMs: float64(inv.Duration.Microseconds()) / 1000, HTTPStatus: inv.HTTPCode,
	}
	// A call no instance ran (throttled, or none could be had) started
	// neither warm nor cold: it has no Cold.
	if !inv.NotRun && inv.Status != gust.StatusThrottled {
		cold := inv.Cold
		s.Cold = &cold
	}
	if inv.Status != "" && inv.Status != gust.StatusOK {
		s.Status, s.Error = StatusFailed, inv.Error
		if s.Error == "" {
			s.Error = inv.Status
		}
		// Only these statuses name one code; "error" covers several.
		switch inv.Status {
		case gust.StatusTimeout:
			s.Code = gust.ETIMEOUT
		case gust.StatusOOM:
			s.Code = gust.EOOM
		case gust.StatusThrottled:
			s.Code = gust.ETHROTTLED
		}
	}
	return s
}

// Cancel cancels an invocation that has not started running (queued, or
// waiting for a retry). Errors: ENOTFOUND, ECONFLICT if it is running or
// finished.
func (a *Async) Cancel(ctx context.Context, id string) (*Status, error) {
	for range 10 {
		s, rev, err := a.currentStatus(ctx, id)
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			if _, serr := a.syncStatus(ctx, id); serr == nil {
				return nil, gust.Errorf(gust.ECONFLICT, "invocation %s was a sync call and has ended: only a queued async invocation can be canceled", id)
			}
		}
		if err != nil {
			return nil, err
		}
		if s.Status != StatusQueued {
			return nil, gust.Errorf(gust.ECONFLICT, "invocation %s is %s: only a queued invocation can be canceled", id, s.Status)
		}
		s.Status = StatusCanceled
		now := a.now()
		s.FinishedAt, s.NextAttemptAt = &now, nil
		if _, err := a.updateStatus(ctx, s, rev); err != nil {
			if gust.ErrorCode(err) == gust.ECONFLICT {
				continue
			}
			return nil, err
		}
		return s, nil
	}
	return nil, gust.Errorf(gust.ECONFLICT, "invocation %s keeps changing; try again", id)
}

func (a *Async) serveGetStatus(w http.ResponseWriter, r *http.Request) {
	s, err := a.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	httperr.WriteJSON(w, http.StatusOK, s)
}

func (a *Async) serveCancel(w http.ResponseWriter, r *http.Request) {
	s, err := a.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	httperr.WriteJSON(w, http.StatusOK, s)
}
