package async

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/gateway"
	"github.com/gustfaas/gust/httperr"
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
}

func (a *Async) serveAccept(w http.ResponseWriter, r *http.Request) {
	res, err := a.accept(r)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	w.Header().Set(HeaderInvocationID, res.ID)
	httperr.WriteJSON(w, http.StatusAccepted, res)
}

func (a *Async) accept(r *http.Request) (*Accepted, error) {
	ctx := r.Context()
	name, ref, path, err := gateway.ParsePath(Prefix, r.URL.Path)
	if err != nil {
		return nil, err
	}
	v, err := a.cfg.Invoker.Resolve(ctx, name, ref)
	if err != nil {
		return nil, err
	}
	callback := r.Header.Get(HeaderCallbackURL)
	if callback != "" {
		if err := ValidateCallbackURL(callback); err != nil {
			return nil, err
		}
	}
	idemKey := r.Header.Get(HeaderIdempotencyKey)
	if len(idemKey) > maxIdempotencyKey {
		return nil, gust.Errorf(gust.EINVALID, "%s is longer than %d bytes", HeaderIdempotencyKey, maxIdempotencyKey)
	}
	limit := v.Spec.MaxBodyBytes
	if limit <= 0 {
		limit = gust.DefaultMaxBodyBytes
	}
	// An event must fit in one NATS message.
	if room := a.maxPayload - headroom; room > 0 && limit > room {
		limit = room
	}
	body, release, err := gateway.ReadBody(r, limit)
	if err != nil {
		return nil, err
	}
	defer release()

	id := a.cfg.NewID()
	if idemKey != "" {
		first, claimed, err := a.claimIdempotencyKey(ctx, name, idemKey, id)
		if err != nil {
			return nil, err
		}
		if !claimed {
			st := StatusQueued
			if s, _, err := a.getStatus(ctx, first); err == nil {
				st = s.Status
			}
			return &Accepted{ID: first, Status: st}, nil
		}
	}
	header := gateway.ForwardHeader(r)
	header.Del(HeaderCallbackURL)
	header.Del(HeaderInvocationID)
	ev := &Event{
		ID: id, Function: name, Ref: ref,
		Method: r.Method, Path: path, Query: r.URL.RawQuery, Header: header,
		Trigger: "async", AcceptedAt: a.now(), CallbackURL: callback, Body: body,
	}
	if _, err := a.enqueue(ctx, ev, v.Number, ""); err != nil {
		if idemKey != "" {
			// Free the key so the client's retry of this failed request
			// is not answered with an id that never ran.
			_ = a.idem.Delete(context.WithoutCancel(ctx), idemStoreKey(name, idemKey))
		}
		return nil, err
	}
	return &Accepted{ID: id, Status: StatusQueued}, nil
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

// enqueue creates the "queued" status of ev and then stores ev in the
// stream. A status that exists already means ev was enqueued before (a
// cron tick another node fired, a repeated redrive): it returns false and
// stores nothing. msgID, if set, also lets the stream drop a duplicate.
func (a *Async) enqueue(ctx context.Context, ev *Event, version int, msgID string) (bool, error) {
	m, err := ev.msg(SubjectAsync + ev.Function)
	if err != nil {
		return false, err
	}
	if size := int64(len(m.Data) + len(m.Header.Get(hdrEvent)) + 256); size > a.maxPayload {
		return false, gust.Errorf(gust.ETOOLARGE, "event of %d bytes (body and headers) is over the async limit of %d bytes", size, a.maxPayload)
	}
	st := &Status{
		ID: ev.ID, Function: ev.Function, Ref: ev.Ref, Version: version, Trigger: ev.Trigger,
		Status: StatusQueued, AcceptedAt: ev.AcceptedAt,
	}
	created, err := a.createStatus(ctx, st)
	if err != nil {
		return false, gust.WrapError(gust.EUNAVAILABLE, err, "storing the invocation failed")
	}
	if !created {
		return false, nil
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	// The caller's hang-up must not cut a publish in half: once the status
	// exists the event has to be stored or the status removed.
	pctx := context.WithoutCancel(ctx)
	if _, err := a.js.PublishMsg(pctx, m, opts...); err != nil {
		_ = a.status.Delete(pctx, statusKey(ev.ID))
		return false, gust.WrapError(gust.EUNAVAILABLE, err, "storing the event failed")
	}
	return true, nil
}

// Enqueue stores ev to run asynchronously, as POST /async/ does after its
// checks; ev.ID, AcceptedAt and Trigger ("async") are filled in if empty.
// It returns false if an invocation with ev.ID exists already.
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
	return a.enqueue(ctx, ev, 0, "")
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
