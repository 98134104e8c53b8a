package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// LogQuery selects function log lines.
type LogQuery struct {
	Since      time.Time
	Invocation string
	Limit      int
	Follow     bool
}

// LogEntry is one function log line as the server stores it.
type LogEntry struct {
	Time       time.Time `json:"time"`
	Function   string    `json:"function"`
	Version    int       `json:"version"`
	Invocation string    `json:"invocation,omitempty"`
	Stream     string    `json:"stream"`
	Message    string    `json:"message"`
}

// Logs opens the log of function name: newline-delimited JSON LogEntry
// values, oldest first; with q.Follow the stream stays open for new lines
// until ctx ends. The caller closes the returned body.
func (c *Client) Logs(ctx context.Context, name string, q LogQuery) (io.ReadCloser, error) {
	u, err := c.url("v1", "functions", name, "logs")
	if err != nil {
		return nil, err
	}
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Invocation != "" {
		v.Set("invocation", q.Invocation)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	resp, err := c.do(ctx, http.MethodGet, u, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// HistoryQuery selects invocation records.
type HistoryQuery struct {
	Function string
	Status   string
	Since    time.Time
	Limit    int
}

// InvocationRecord is one finished invocation as metered.
type InvocationRecord struct {
	ID         string    `json:"id"`
	Function   string    `json:"function"`
	Version    int       `json:"version"`
	Trigger    string    `json:"trigger,omitempty"`
	Start      time.Time `json:"start"`
	DurationUs int64     `json:"durationUs"`
	BilledMs   int64     `json:"billedMs"`
	MemoryMB   int       `json:"memoryMB"`
	GBSeconds  float64   `json:"gbSeconds"`
	Cold       bool      `json:"cold"`
	Status     string    `json:"status"`
}

// Invocations lists recent invocations, newest first.
func (c *Client) Invocations(ctx context.Context, q HistoryQuery) ([]InvocationRecord, error) {
	u, err := c.url("v1", "invocations")
	if err != nil {
		return nil, err
	}
	v := url.Values{}
	if q.Function != "" {
		v.Set("function", q.Function)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	var out struct {
		Invocations []InvocationRecord `json:"invocations"`
	}
	if err := c.doJSON(ctx, http.MethodGet, u, nil, &out); err != nil {
		return nil, err
	}
	return out.Invocations, nil
}
