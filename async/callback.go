package async

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// callback posts st to ev's callback URL in the background, retrying a
// bounded number of times with doubling delays. It gives up at Close: a
// callback is best effort and not repeated after a restart.
func (a *Async) callback(ev *Event, st *Status) {
	if ev.CallbackURL == "" {
		return
	}
	body, err := json.Marshal(st)
	if err != nil {
		a.log.Error("encoding callback", "invocation", ev.ID, "err", err)
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
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
