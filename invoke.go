package gust

import (
	"net/http"
	"time"
)

// Request is the one event shape every trigger becomes: an HTTP request to
// the function. Path is the part after /fn/NAME and always starts with "/".
type Request struct {
	ID       string // invocation id, also sent to the client as X-Gust-Invocation-Id
	Function string
	Version  int
	Method   string
	Path     string // decoded: "/a%2Fb" arrives as "/a/b"
	// RawPath is Path as the client escaped it, when that differs from
	// Path's default escaping, and "" otherwise, as url.URL.RawPath: it is
	// "/a%2Fb" for the Path "/a/b" of "/fn/NAME/a%2Fb", so a function can
	// tell an escaped slash from a separator.
	RawPath string
	Query   string // raw query, without '?'
	Header  http.Header
	Body    []byte
	Trigger string // "http", "async", "cron", ...
}

// Response is what a function answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Invocation statuses, as metered and reported.
const (
	StatusOK        = "ok"
	StatusError     = "error"
	StatusTimeout   = "timeout"
	StatusThrottled = "throttled"
	StatusOOM       = "oom"
)

// StatusOf maps an invocation error to its metered status.
func StatusOf(err error) string {
	switch ErrorCode(err) {
	case "":
		return StatusOK
	case ETIMEOUT:
		return StatusTimeout
	case ETHROTTLED, ECAPACITY:
		return StatusThrottled
	case EOOM:
		return StatusOOM
	default:
		return StatusError
	}
}

// Invocation is the record of one invocation: what ran, for how long, and
// how it ended. The meter derives billing from it.
type Invocation struct {
	ID        string        `json:"id"`
	Function  string        `json:"function"`
	Version   int           `json:"version"`
	Trigger   string        `json:"trigger"`
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"durationNs"`
	QueueWait time.Duration `json:"queueWaitNs"`
	MemoryMB  int           `json:"memoryMB"`
	Cold      bool          `json:"cold"`
	Status    string        `json:"status"`
	Error     string        `json:"error,omitempty"`
	HTTPCode  int           `json:"httpStatus,omitempty"`
	// NotRun says no instance ran the call (none could be had: the
	// function failed to load or start, or it was throttled): the call is
	// recorded, with its latency in Duration, but nothing is billed.
	NotRun bool `json:"notRun,omitempty"`
}

// Recorder receives the record of every finished invocation (including
// throttled ones). Record is called on the invocation path: it must be
// cheap and must not block on I/O.
type Recorder interface {
	Record(inv *Invocation)
}

// PoolStats is a snapshot of the instances of one function version on
// this node, for `gust status` and metrics.
type PoolStats struct {
	Function   string `json:"function"`
	Version    int    `json:"version"`
	Idle       int    `json:"idle"`
	Busy       int    `json:"busy"`
	Starting   int    `json:"starting"`
	Waiting    int    `json:"waiting"`
	InFlight   int    `json:"inFlight"`
	MemoryMB   int    `json:"memoryMB"`
	ColdStarts int64  `json:"coldStarts"`
	Throttled  int64  `json:"throttled"`
}
