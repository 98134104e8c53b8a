package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gustfaas/gust"
)

// InvocationStatus is the status of an invocation, as
// GET /v1/invocations/ID reports it. Kind says whether it was async
// (stored, queued, retried) or sync (its caller waited: /fn, NATS
// triggers); a sync one is succeeded or failed after one attempt, with
// DurationMs, Cold and HTTPStatus, and keeps no response body. A server
// older than Kind answers only async ones and leaves Kind empty.
type InvocationStatus struct {
	ID            string              `json:"id"`
	Kind          string              `json:"kind,omitempty"` // async or sync
	Function      string              `json:"function"`
	Ref           string              `json:"ref,omitempty"`
	Version       int                 `json:"version,omitempty"`
	Trigger       string              `json:"trigger"`
	Status        string              `json:"status"` // queued, running, succeeded, failed, dead-lettered, canceled
	Attempts      int                 `json:"attempts"`
	Error         string              `json:"error,omitempty"`
	Code          string              `json:"code,omitempty"`
	AcceptedAt    time.Time           `json:"acceptedAt"`
	StartedAt     *time.Time          `json:"startedAt,omitempty"`
	FinishedAt    *time.Time          `json:"finishedAt,omitempty"`
	NextAttemptAt *time.Time          `json:"nextAttemptAt,omitempty"`
	Response      *InvocationResponse `json:"response,omitempty"`
	DurationMs    float64             `json:"durationMs,omitempty"` // sync: time the function ran
	Cold          *bool               `json:"cold,omitempty"`       // sync: it started an instance
	HTTPStatus    int                 `json:"httpStatus,omitempty"` // sync: what the function answered
}

// InvocationResponse is what the function answered, kept up to a size limit.
type InvocationResponse struct {
	Status    int         `json:"status"`
	Headers   http.Header `json:"headers,omitempty"`
	Body      string      `json:"body"`
	Encoding  string      `json:"encoding"` // "text" or "base64"
	Size      int         `json:"size"`
	Truncated bool        `json:"truncated,omitempty"`
}

// Final reports whether the invocation has ended.
func (s *InvocationStatus) Final() bool {
	switch s.Status {
	case "succeeded", "failed", "dead-lettered", "canceled":
		return true
	}
	return false
}

// DeadLetter is an event that failed every attempt.
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
	Seq        uint64    `json:"seq"`
}

// RedriveResult lists what a redrive re-enqueued and which asked-for ids
// were not dead letters.
type RedriveResult struct {
	Redriven []string `json:"redriven"`
	Missing  []string `json:"missing,omitempty"`
}

// InvokeAsync stores an invocation of name (which may carry "@REF") through
// POST /async/NAME and returns its id once gust has stored it durably.
// subPath and header are as for Invoke; header may carry
// X-Gust-Callback-Url and Idempotency-Key. Errors: ENOTFOUND, ETOOLARGE,
// EINVALID, EUNAVAILABLE. Like Invoke it does not send the admin token.
func (c *Client) InvokeAsync(ctx context.Context, name, subPath string, body io.Reader, header http.Header) (string, error) {
	u, err := c.url("async", name)
	if err != nil {
		return "", err
	}
	if subPath != "" {
		sub, err := url.Parse(subPath)
		if err != nil || sub.Scheme != "" || sub.Host != "" {
			return "", gust.Errorf(gust.EINVALID, "invalid path %q: want a path such as /items?id=3", subPath)
		}
		if p := sub.EscapedPath(); p != "" {
			if !strings.HasPrefix(p, "/") {
				p = "/" + p
			}
			u += p
		}
		if sub.RawQuery != "" {
			u += "?" + sub.RawQuery
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return "", gust.WrapError(gust.EINVALID, err, "invalid invocation request")
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.send(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", DecodeError(resp)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&out); err != nil || out.ID == "" {
		if id := resp.Header.Get("X-Gust-Invocation-Id"); id != "" {
			return id, nil
		}
		return "", gust.Errorf(gust.EINTERNAL, "async accept answered 202 without an invocation id")
	}
	return out.ID, nil
}

// Invocation returns the status of an invocation, async or sync.
// Errors: ENOTFOUND.
func (c *Client) Invocation(ctx context.Context, id string) (*InvocationStatus, error) {
	var s InvocationStatus
	if err := c.getJSON(ctx, &s, "v1", "invocations", id); err != nil {
		return nil, err
	}
	return &s, nil
}

// CancelInvocation cancels an async invocation that has not started.
// Errors: ENOTFOUND, ECONFLICT if it is running or finished.
func (c *Client) CancelInvocation(ctx context.Context, id string) (*InvocationStatus, error) {
	u, err := c.url("v1", "invocations", id)
	if err != nil {
		return nil, err
	}
	var s InvocationStatus
	if err := c.doJSON(ctx, http.MethodDelete, u, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// DeadLetters lists the dead letters of a function, oldest first.
func (c *Client) DeadLetters(ctx context.Context, name string) ([]DeadLetter, error) {
	var out struct {
		DeadLetters []DeadLetter `json:"deadLetters"`
	}
	if err := c.getJSON(ctx, &out, "v1", "functions", name, "dlq"); err != nil {
		return nil, err
	}
	return out.DeadLetters, nil
}

// Redrive re-enqueues the dead letters of a function with the given ids,
// or all of them if ids is empty.
func (c *Client) Redrive(ctx context.Context, name string, ids []string) (*RedriveResult, error) {
	u, err := c.url("v1", "functions", name, "dlq", "redrive")
	if err != nil {
		return nil, err
	}
	in := struct {
		IDs []string `json:"ids,omitempty"`
	}{ids}
	var out RedriveResult
	if err := c.doJSON(ctx, http.MethodPost, u, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PurgeDeadLetters deletes every dead letter of a function and returns how
// many there were.
func (c *Client) PurgeDeadLetters(ctx context.Context, name string) (uint64, error) {
	u, err := c.url("v1", "functions", name, "dlq")
	if err != nil {
		return 0, err
	}
	var out struct {
		Purged uint64 `json:"purged"`
	}
	if err := c.doJSON(ctx, http.MethodDelete, u, nil, &out); err != nil {
		return 0, err
	}
	return out.Purged, nil
}
