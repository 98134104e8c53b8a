package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// DeadLetter is one event in the dead-letter stream, as listed.
type DeadLetter struct {
	ID         string    `json:"id"`
	Function   string    `json:"function"`
	Ref        string    `json:"ref,omitempty"`
	Trigger    string    `json:"trigger"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Query      string    `json:"query,omitempty"`
	BodySize   int       `json:"bodySize"`
	Error      string    `json:"error"`
	Code       string    `json:"code,omitempty"`
	Attempts   int       `json:"attempts"`
	Redrives   int       `json:"redrives,omitempty"`
	AcceptedAt time.Time `json:"acceptedAt"`
	DeadAt     time.Time `json:"deadAt"`
	Seq        uint64    `json:"seq"` // position in GUST_DLQ
}

// RedriveResult says what a redrive did.
type RedriveResult struct {
	Redriven []string `json:"redriven"`
	Missing  []string `json:"missing,omitempty"` // asked for but not dead-lettered
}

func (a *Async) publishDead(ctx context.Context, ev *Event, dead Dead, msgID string) error {
	m, err := ev.msg(SubjectDLQ + ev.Function)
	if err != nil {
		return err
	}
	d, err := json.Marshal(dead)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	m.Header = nats.Header{hdrDead: []string{string(d)}}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := a.js.PublishMsg(ctx, m, opts...); err != nil {
		return fmt.Errorf("publish dead letter %s: %w", ev.ID, err)
	}
	return nil
}

type deadMsg struct {
	ev   *Event
	dead Dead
	seq  uint64
}

// deadLetters reads up to MaxList dead letters of function, oldest first.
func (a *Async) deadLetters(ctx context.Context, function string) ([]deadMsg, error) {
	if err := gust.ValidateName(function); err != nil {
		return nil, err
	}
	subj := SubjectDLQ + function
	info, err := a.dlq.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", function, err)
	}
	if info.State.Subjects[subj] == 0 {
		return nil, nil
	}
	cons, err := a.dlq.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", function, err)
	}
	var out []deadMsg
	for len(out) < a.cfg.MaxList {
		batch, err := cons.Fetch(min(256, a.cfg.MaxList-len(out)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("dead letters of %s: %w", function, err)
		}
		n, last := 0, false
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			last = meta.NumPending == 0
			ev, err := decodeEvent(msg.Headers(), msg.Data())
			if err != nil {
				a.log.Warn("skipping undecodable dead letter", "seq", meta.Sequence.Stream, "err", err)
				continue
			}
			var dead Dead
			_ = json.Unmarshal([]byte(msg.Headers().Get(hdrDead)), &dead)
			out = append(out, deadMsg{ev: ev, dead: dead, seq: meta.Sequence.Stream})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("dead letters of %s: %w", function, err)
		}
		if last || n == 0 {
			break
		}
	}
	return out, nil
}

// DeadLetters lists up to MaxList dead letters of function, oldest first.
func (a *Async) DeadLetters(ctx context.Context, function string) ([]DeadLetter, error) {
	ms, err := a.deadLetters(ctx, function)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(ms))
	for _, m := range ms {
		out = append(out, DeadLetter{
			ID: m.ev.ID, Function: m.ev.Function, Ref: m.ev.Ref, Trigger: m.ev.Trigger,
			Method: m.ev.Method, Path: m.ev.Path, Query: m.ev.Query, BodySize: len(m.ev.Body),
			Error: m.dead.Error, Code: m.dead.Code, Attempts: m.dead.Attempts, Redrives: m.ev.Redrives,
			AcceptedAt: m.ev.AcceptedAt, DeadAt: m.dead.DeadAt, Seq: m.seq,
		})
	}
	return out, nil
}

// Redrive re-enqueues dead letters of function (those with the given ids,
// or all if ids is empty) as fresh events under their old ids: attempts
// start again at zero and the max event age counts from now. Each is
// removed from the dead-letter stream once it is queued.
func (a *Async) Redrive(ctx context.Context, function string, ids []string) (*RedriveResult, error) {
	ms, err := a.deadLetters(ctx, function)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	res := &RedriveResult{Redriven: []string{}}
	done := map[string]bool{}
	for _, m := range ms {
		if len(want) > 0 && !want[m.ev.ID] {
			continue
		}
		if done[m.ev.ID] {
			// A second dead letter of one id: the first redrive covers it.
			_ = a.dlq.DeleteMsg(ctx, m.seq)
			continue
		}
		ev := m.ev
		ev.AcceptedAt = a.now()
		ev.Redrives++
		// The old record says dead-lettered, an end state a worker would
		// not run: it is replaced before the event is stored again.
		if err := a.putStatus(ctx, queuedStatus(ev)); err != nil {
			return res, gust.WrapError(gust.EUNAVAILABLE, err, "redriving %s", ev.ID)
		}
		if _, err := a.store(ev, ""); err != nil {
			return res, gust.WrapError(gust.EUNAVAILABLE, err, "redriving %s", ev.ID)
		}
		if err := a.dlq.DeleteMsg(ctx, m.seq); err != nil {
			a.log.Warn("removing a redriven dead letter", "invocation", ev.ID, "seq", m.seq, "err", err)
		}
		done[ev.ID] = true
		res.Redriven = append(res.Redriven, ev.ID)
	}
	for _, id := range ids {
		if !done[id] {
			res.Missing = append(res.Missing, id)
		}
	}
	return res, nil
}

// PurgeDeadLetters deletes every dead letter of function and returns how
// many there were.
func (a *Async) PurgeDeadLetters(ctx context.Context, function string) (uint64, error) {
	if err := gust.ValidateName(function); err != nil {
		return 0, err
	}
	subj := SubjectDLQ + function
	info, err := a.dlq.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, fmt.Errorf("purge dead letters of %s: %w", function, err)
	}
	n := info.State.Subjects[subj]
	if n == 0 {
		return 0, nil
	}
	if err := a.dlq.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		return 0, fmt.Errorf("purge dead letters of %s: %w", function, err)
	}
	return n, nil
}

func (a *Async) serveDLQList(w http.ResponseWriter, r *http.Request) {
	out, err := a.DeadLetters(r.Context(), r.PathValue("name"))
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	if out == nil {
		out = []DeadLetter{}
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{"deadLetters": out})
}

func (a *Async) serveDLQRedrive(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDs []string `json:"ids"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		httperr.Write(w, r, gust.WrapError(gust.EINVALID, err, "reading the request body"))
		return
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &in); err != nil {
			httperr.Write(w, r, gust.Errorf(gust.EINVALID, "invalid body: want {\"ids\": [...]} or nothing: %v", err))
			return
		}
	}
	res, err := a.Redrive(r.Context(), r.PathValue("name"), in.IDs)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	httperr.WriteJSON(w, http.StatusOK, res)
}

func (a *Async) serveDLQPurge(w http.ResponseWriter, r *http.Request) {
	n, err := a.PurgeDeadLetters(r.Context(), r.PathValue("name"))
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{"purged": n})
}
