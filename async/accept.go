package async

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/gateway"
	"github.com/gustfaas/gust/httperr"
	"github.com/gustfaas/gust/trace"
)

// maxIdempotencyKey bounds the Idempotency-Key header; it is hashed, so the
// bound only keeps abuse cheap.
const maxIdempotencyKey = 255

// headroom is what an event's own metadata may take in a message besides
// the body.
const headroom = 64 << 10

// Accepted is the body of a 202.
type Accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`

	function string // for the accept's span
	version  int
}

// Route is the accept's route as traces name it: the pattern, never the
// function's name, so that span names stay few.
const Route = Prefix + "{name}"

func (a *Async) serveAccept(w http.ResponseWriter, r *http.Request) {
	// As on /fn, every answer names an invocation id, an error's too (it
	// names nothing stored, but ties the answer to the logs).
	id := a.cfg.NewID()
	if r.Method != http.MethodPost {
		h := w.Header()
		h.Set(HeaderInvocationID, id)
		h.Set("Allow", http.MethodPost)
		httperr.WriteJSON(w, http.StatusMethodNotAllowed, httperr.Body{Error: "async invocations are made by POST", Code: gust.EINVALID})
		return
	}
	r, span := a.cfg.Tracer.StartRequest(r, Route)
	res, err := a.accept(r, id)
	if err != nil {
		w.Header().Set(HeaderInvocationID, id)
		httperr.Write(w, r, err)
		span.End(httperr.Status(gust.ErrorCode(err)), "", 0, "")
		return
	}
	writeAccepted(w, res)
	span.End(http.StatusAccepted, res.function, res.version, res.ID)
}

// writeAccepted answers 202 with res. It is on the path of every accept,
// so it writes the JSON itself: an id that validID admits and the status
// constants need no escaping, and anything else goes through encoding/json.
func writeAccepted(w http.ResponseWriter, res *Accepted) {
	h := w.Header()
	if !validID(res.ID) || !validID(res.Status) {
		h.Set(HeaderInvocationID, res.ID)
		httperr.WriteJSON(w, http.StatusAccepted, res)
		return
	}
	// Both values in one allocation; the keys are canonical already.
	vals := []string{res.ID, "application/json"}
	h[HeaderInvocationID] = vals[:1:1]
	h["Content-Type"] = vals[1:]
	w.WriteHeader(http.StatusAccepted)
	b := make([]byte, 0, 32+len(res.ID)+len(res.Status))
	b = append(b, `{"id":"`...)
	b = append(b, res.ID...)
	b = append(b, `","status":"`...)
	b = append(b, res.Status...)
	b = append(b, "\"}\n"...)
	_, _ = w.Write(b)
}

// accept stores the event of r under id (or id and its stream sequence).
func (a *Async) accept(r *http.Request, id string) (*Accepted, error) {
	ctx := r.Context()
	name, ref, path, err := gateway.ParsePath(Prefix, r.URL.Path)
	if err != nil {
		return nil, err
	}
	// The guard in front (routes.Router.Guard) has resolved the path
	// already; run the version it admitted the request under.
	v := gateway.Resolved(r)
	if v == nil {
		if v, err = a.cfg.Invoker.Resolve(ctx, name, ref); err != nil {
			return nil, err
		}
	}
	// Refused here as /fn refuses it, on a cluster too: there a node
	// answers its own EINVALID without forwarding the call (cluster.Invoke),
	// and an event stored anyway could be taken by any node's workers,
	// this one's included, to be tried and dead-lettered.
	if ad, ok := a.cfg.Invoker.(Admitter); ok {
		if err := ad.Admit(v); err != nil {
			return nil, err
		}
	}
	callback := r.Header.Get(HeaderCallbackURL)
	if callback != "" {
		if err := ValidateCallbackURL(callback); err != nil {
			return nil, err
		}
		if err := a.checkCallbackHost(callback); err != nil {
			return nil, err
		}
	}
	idemKey := r.Header.Get(HeaderIdempotencyKey)
	if len(idemKey) > maxIdempotencyKey {
		return nil, gust.Errorf(gust.EINVALID, "%s is longer than %d bytes", HeaderIdempotencyKey, maxIdempotencyKey)
	}
	body, release, err := a.readBody(r, v, Prefix)
	if err != nil {
		return nil, err
	}
	defer release()

	if idemKey != "" {
		first, claimed, err := a.claimIdempotencyKey(ctx, name, idemKey, id)
		if err != nil {
			return nil, err
		}
		if !claimed {
			acc := a.repeated(ctx, first)
			acc.function, acc.version = name, v.Number
			return acc, nil
		}
	}
	header := gateway.ForwardHeader(r)
	header.Del(HeaderCallbackURL)
	header.Del(HeaderInvocationID)
	// The event names the accept's span as its parent (tracing on); with
	// tracing off the caller's traceparent goes through unchanged, and the
	// context is not searched for a span that cannot be there.
	if a.cfg.Tracer.Enabled() {
		trace.Inject(ctx, header)
	}
	// Without an idempotency key, whose record must name the id before the
	// event is stored, the id ends in the event's stream sequence and the
	// event needs no subject of its own (see Event.subject).
	ev := &Event{
		ID: id, Function: name, Ref: ref, Version: v.Number,
		Method: r.Method, Path: path, RawPath: gateway.RawPath(Prefix, r, path), Query: r.URL.RawQuery, Header: header,
		Trigger: "async", AcceptedAt: a.now(), CallbackURL: callback, Body: body,
		SeqSuffix: idemKey == "",
	}
	seq, err := a.store(ev, "")
	if err != nil {
		if idemKey != "" {
			// Free the key so the client's retry of this failed request
			// is not answered with an id that never ran.
			_ = a.idem.Delete(context.WithoutCancel(ctx), idemStoreKey(name, idemKey))
		}
		return nil, err
	}
	if ev.SeqSuffix {
		id = seqInvocationID(id, seq)
	}
	return &Accepted{ID: id, Status: StatusQueued, function: name, version: v.Number}, nil
}

// readBody reads r's body for an event of v, up to the function's limit
// or, if that is lower, the most that fits one NATS message with the
// event's metadata. Over the second, the error says which limit it is and
// what to do: door is where r came in ("/async/", "/hooks/").
func (a *Async) readBody(r *http.Request, v *gust.Version, door string) ([]byte, func(), error) {
	fnLimit := v.Spec.MaxBodyBytes
	if fnLimit <= 0 {
		fnLimit = gust.DefaultMaxBodyBytes
	}
	limit := fnLimit
	if room := a.maxPayload - headroom; room > 0 && limit > room {
		limit = room
	}
	body, release, err := gateway.ReadBody(r, limit)
	if err == nil || limit == fnLimit || gust.ErrorCode(err) != gust.ETOOLARGE {
		return body, release, err
	}
	what := "request body"
	if r.ContentLength > 0 {
		what = fmt.Sprintf("request body of %d bytes", r.ContentLength)
	}
	instead := ""
	if door == Prefix {
		instead = fmt.Sprintf("; /fn/%s takes up to the function's limit of %d bytes", v.Function, fnLimit)
	}
	return nil, release, gust.Errorf(gust.ETOOLARGE,
		"%s is over the async limit of %d bytes: an async event must fit in one NATS message, whose max_payload is %d bytes (%d of them kept for the event's metadata)%s; "+
			"for larger events raise it (gust serve --max-payload, or max_payload on the NATS servers of gust serve --nats)",
		what, limit, a.maxPayload, headroom, instead)
}

// repeated answers a request whose idempotency key names invocation first.
func (a *Async) repeated(ctx context.Context, first string) *Accepted {
	st := StatusQueued
	if s, _, err := a.currentStatus(ctx, first); err == nil {
		st = s.Status
	}
	return &Accepted{ID: first, Status: st}
}

func idemStoreKey(function, key string) string {
	sum := sha256.Sum256([]byte(key))
	return function + "." + hex.EncodeToString(sum[:])
}

// claimIdempotencyKey maps key to id unless it is mapped already, in which
// case it returns the first id and false. KV Create makes two concurrent
// requests with one key agree on one winner.
func (a *Async) claimIdempotencyKey(ctx context.Context, function, key, id string) (string, bool, error) {
	k := idemStoreKey(function, key)
	for range 3 {
		if _, err := a.idem.Create(ctx, k, []byte(id)); err == nil {
			return id, true, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", false, gust.WrapError(gust.EUNAVAILABLE, err, "storing the idempotency key failed")
		}
		e, err := a.idem.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or freed between Create and Get
		}
		if err != nil {
			return "", false, gust.WrapError(gust.EUNAVAILABLE, err, "reading the idempotency key failed")
		}
		return string(e.Value()), false, nil
	}
	return "", false, gust.Errorf(gust.ECONFLICT, "idempotency key %q is changing; retry", key)
}

// store writes ev to the stream and returns once JetStream has
// acknowledged it: the one durable write of an accept. No status record is
// written: until a worker records one, a status lookup finds the event in
// the stream by its id and reports it queued. Publishes go out
// asynchronously on one shared publisher, so concurrent accepts share the
// connection's round trips and the store's writes, with at most
// Config.PublishWindow awaiting their acks; each caller still waits for
// its own ack, so nothing is answered 202 before it is stored. msgID, if
// set, lets the stream drop a repeat within its duplicate window. It
// returns the event's stream sequence.
func (a *Async) store(ev *Event, msgID string) (uint64, error) {
	if !validID(ev.ID) || ev.SeqSuffix && len(ev.ID) > maxStoredSeqID {
		return 0, gust.Errorf(gust.EINVALID, "invalid invocation id %q: want 1 to 64 letters, digits, '_' and '-'", ev.ID)
	}
	buf := getDataBuf(ev.dataSizeHint())
	defer putDataBuf(buf)
	data, err := ev.appendData(*buf)
	if err != nil {
		return 0, err
	}
	*buf = data[:0]
	if size := int64(len(data) + 256); size > a.maxPayload {
		return 0, gust.Errorf(gust.ETOOLARGE, "event of %d bytes (body and headers) does not fit in one NATS message, whose max_payload is %d bytes; send fewer or smaller headers, or raise max_payload (gust serve --max-payload, or on the NATS servers of gust serve --nats)", size, a.maxPayload)
	}
	m := &nats.Msg{Subject: ev.subject(), Data: data}
	if msgID != "" {
		m.Header = nats.Header{jetstream.MsgIDHeader: []string{msgID}}
	}
	// A full window makes the accept wait for a slot (back pressure), not
	// fail at once; the publish timeout bounds the wait for the ack. The
	// buffer goes back to the pool (deferred) only once the ack is in.
	seq, err := a.pub.publish(m)
	if err != nil {
		return 0, gust.WrapError(gust.EUNAVAILABLE, err, "storing the event failed")
	}
	return seq, nil
}

// maxStoredSeqID bounds the stored part of a seqInvocationID so that the
// whole (with "-" and up to 20 digits) is a valid id.
const maxStoredSeqID = 64 - 21

// enqueueOnce creates the "queued" status of ev and then stores ev: two
// writes, for events whose id is not fresh (a cron tick every node fires).
// A status that exists already means ev was enqueued before: it returns
// false and stores nothing. msgID, if set, also lets the stream drop a
// duplicate.
func (a *Async) enqueueOnce(ctx context.Context, ev *Event, msgID string) (bool, error) {
	if !validID(ev.ID) {
		return false, gust.Errorf(gust.EINVALID, "invalid invocation id %q: want 1 to 64 letters, digits, '_' and '-'", ev.ID)
	}
	st := queuedStatus(ev)
	created, err := a.createStatus(ctx, st)
	if err != nil {
		return false, gust.WrapError(gust.EUNAVAILABLE, err, "storing the invocation failed")
	}
	if !created {
		return false, nil
	}
	if _, err := a.store(ev, msgID); err != nil {
		// The caller's hang-up must not leave a status without its event.
		_ = a.status.Delete(context.WithoutCancel(ctx), statusKey(ev.ID))
		return false, err
	}
	return true, nil
}

// Enqueue stores ev to run asynchronously, as POST /async/ does after its
// checks; ev.ID, AcceptedAt and Trigger ("async") are filled in if empty.
// It returns false if an invocation with ev.ID exists already: unlike an
// accept it writes a status record first, so that a chosen id runs once.
func (a *Async) Enqueue(ctx context.Context, ev *Event) (bool, error) {
	if ev.ID == "" {
		ev.ID = a.cfg.NewID()
	}
	if ev.AcceptedAt.IsZero() {
		ev.AcceptedAt = a.now()
	}
	if ev.Trigger == "" {
		ev.Trigger = "async"
	}
	if ev.Method == "" {
		ev.Method = http.MethodPost
	}
	if ev.Path == "" {
		ev.Path = "/"
	}
	if err := gust.ValidateName(ev.Function); err != nil {
		return false, err
	}
	return a.enqueueOnce(ctx, ev, "")
}

// ValidateCallbackURL accepts absolute http and https URLs with a host.
// Errors: EINVALID.
func ValidateCallbackURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return gust.Errorf(gust.EINVALID, "invalid %s %q: want an absolute http or https URL without credentials", HeaderCallbackURL, s)
	}
	if len(s) > 2048 {
		return gust.Errorf(gust.EINVALID, "invalid %s: longer than 2048 bytes", HeaderCallbackURL)
	}
	if strings.ContainsAny(s, " \r\n") {
		return gust.Errorf(gust.EINVALID, "invalid %s: contains spaces or line breaks", HeaderCallbackURL)
	}
	return nil
}
