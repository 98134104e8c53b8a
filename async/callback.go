package async

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// MaxCallbacks bounds the callbacks being delivered at once in a process
// (their retries included). Each holds its status JSON, up to
// MaxResponseBytes of response and more, so without a bound a slow or dead
// callback endpoint under a stream of events grew the node's memory
// without limit.
const MaxCallbacks = 256

// callbackSlots are the callbacks in flight; a package variable, not a
// field, so that tests can shrink it.
var callbackSlots = make(chan struct{}, MaxCallbacks)

// callbacksDropped counts callbacks not sent because every slot was busy.
var callbacksDropped atomic.Uint64

// CallbacksDropped returns how many callbacks this process did not send
// because MaxCallbacks were in flight; a metric for the node to export.
func CallbacksDropped() uint64 { return callbacksDropped.Load() }

// callback posts st to ev's callback URL in the background, retrying a
// bounded number of times with doubling delays. It gives up at Close: a
// callback is best effort and not repeated after a restart. When
// MaxCallbacks are in flight it is dropped, with a log line, rather than
// queued (memory) or waited for (which would hold the worker, and let one
// dead endpoint slow every function's async invocations): the status it
// carries stays queryable at GET /v1/invocations/ID.
func (a *Async) callback(ev *Event, st *Status) {
	if ev.CallbackURL == "" {
		return
	}
	slots := callbackSlots
	select {
	case slots <- struct{}{}:
	default:
		n := callbacksDropped.Add(1)
		a.log.Warn("callback dropped: too many callbacks in flight; the status stays queryable", "invocation", ev.ID, "url", ev.CallbackURL, "inFlight", cap(slots), "droppedTotal", n)
		return
	}
	body, err := json.Marshal(st)
	if err != nil {
		<-slots
		a.log.Error("encoding callback", "invocation", ev.ID, "err", err)
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() { <-slots }()
		delay := a.cfg.CallbackBackoff
		for attempt := 0; attempt <= a.cfg.CallbackRetries; attempt++ {
			if attempt > 0 {
				if !sleep(a.ctx, a.jitter(delay/2)+delay/2) {
					return
				}
				delay *= 2
			}
			err := a.postCallback(ev, body)
			if err == nil {
				return
			}
			a.log.Warn("callback failed", "invocation", ev.ID, "url", ev.CallbackURL, "attempt", attempt+1, "err", err)
		}
	}()
}

func (a *Async) postCallback(ev *Event, body []byte) error {
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ev.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderInvocationID, ev.ID)
	req.Header.Set("User-Agent", "gust-callback")
	resp, err := a.cfg.CallbackClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("callback answered %s", resp.Status)
	}
	return nil
}
