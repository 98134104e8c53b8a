package meter

import (
	"time"
	"unicode/utf8"

	"github.com/gustfaas/gust"
)

// Record is one metered invocation, as stored in the usage stream.
type Record struct {
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
	// Error is the message of a failed invocation (up to maxErrorBytes),
	// HTTPStatus what the function answered, so that an invocation can
	// be looked up by id (Invocation).
	Error      string `json:"error,omitempty"`
	HTTPStatus int    `json:"httpStatus,omitempty"`
}

// NewRecord derives the billing of one invocation. Billed time is the
// duration rounded up to the next millisecond with a minimum of 1 ms, as
// Lambda bills; a throttled invocation never ran, so it bills nothing.
func NewRecord(inv *gust.Invocation) Record {
	r := Record{
		ID:         inv.ID,
		Function:   inv.Function,
		Version:    inv.Version,
		Trigger:    inv.Trigger,
		Start:      inv.Start,
		DurationUs: max(int64(inv.Duration/time.Microsecond), 0),
		MemoryMB:   inv.MemoryMB,
		Cold:       inv.Cold,
		Status:     inv.Status,
		Error:      truncate(inv.Error, maxErrorBytes),
		HTTPStatus: inv.HTTPCode,
	}
	if r.Status == "" {
		r.Status = gust.StatusOK
	}
	// Only time an instance spent on the call is billed: not a throttled
	// call's wait, nor a call that never reached an instance.
	if r.Status != gust.StatusThrottled && !inv.NotRun {
		r.BilledMs = BilledMs(inv.Duration)
		r.GBSeconds = gbSeconds(r.BilledMs * int64(r.MemoryMB))
	}
	return r
}

// BilledMs is d rounded up to whole milliseconds, at least 1.
func BilledMs(d time.Duration) int64 {
	if d <= 0 {
		return 1
	}
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return max(ms, 1)
}

// gbSeconds converts megabyte-milliseconds to gigabyte-seconds. Aggregates
// sum MB·ms as integers and convert only when reporting, so totals are
// exact and independent of the order in which records were added.
func gbSeconds(mbMs int64) float64 {
	return float64(mbMs) / (1000 * 1024)
}

// truncate cuts s to at most n bytes, not inside a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
