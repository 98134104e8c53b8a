package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RateResult is the output of the rate mode.
type RateResult struct {
	Mode        string    `json:"mode"`
	URL         string    `json:"url"`
	Rate        float64   `json:"rate"`
	Conns       int       `json:"conns"`
	DurationS   float64   `json:"duration_s"`
	Sent        int       `json:"sent"`
	OK          int       `json:"ok"`
	Non2xx      int       `json:"non2xx"`
	Errors      int       `json:"errors"`
	Engine      string    `json:"engine"` // how the generator waits and sends: see engines
	AchievedRPS float64   `json:"achieved_rps"`
	Latency     Latencies `json:"latency"`  // from the intended send time to the end of the body
	Service     Latencies `json:"service"`  // from the actual send time to the end of the body
	SendLag     Latencies `json:"send_lag"` // how late each request was written: the generator's wake-up, or an earlier answer holding the connection
}

// maxSamples bounds what one run keeps in memory.
const maxSamples = 5_000_000

func runRate(args []string) (any, error) {
	fs := flag.NewFlagSet("rate", flag.ContinueOnError)
	u := fs.String("url", "", "URL to GET (http, keep-alive, answers with Content-Length)")
	rate := fs.Float64("rate", 1000, "requests per second")
	dur := fs.Duration("duration", 10*time.Second, "measured duration")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up at the same rate")
	conns := fs.Int("conns", 16, "connections; request i goes on connection i mod conns")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of one request")
	engine := fs.String("engine", defaultEngine, "how requests are sent: "+engineNames())
	if err := parse(fs, args, u); err != nil {
		return nil, err
	}
	loop, ok := engines[*engine]
	if !ok {
		return nil, fmt.Errorf("unknown -engine %q (have %s)", *engine, engineNames())
	}
	if *rate <= 0 || *rate*dur.Seconds() > maxSamples || *rate*warm.Seconds() > maxSamples {
		return nil, fmt.Errorf("-rate times -duration must be between 1 and %d requests", maxSamples)
	}
	if *conns < 1 || *conns > 1000 {
		return nil, fmt.Errorf("-conns must be 1 to 1000")
	}
	target, err := newTarget(*u)
	if err != nil {
		return nil, err
	}
	if *warm > 0 {
		if _, err := loop(target, *rate, *warm, *conns, *timeout); err != nil {
			return nil, err
		}
	}
	r, err := loop(target, *rate, *dur, *conns, *timeout)
	if err != nil {
		return nil, err
	}
	r.Engine = *engine
	fmt.Fprintf(os.Stderr, "rate (%s) %.0f/s for %s on %d conns: %d sent, %d ok, %d non-2xx, %d errors; latency p50 %.0fµs p99 %.0fµs p99.9 %.0fµs max %.0fµs; service p50 %.0fµs p99 %.0fµs; send lag p50 %.0fµs p99 %.0fµs\n",
		r.Engine, r.Rate, dur, r.Conns, r.Sent, r.OK, r.Non2xx, r.Errors, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max, r.Service.P50, r.Service.P99, r.SendLag.P50, r.SendLag.P99)
	return r, nil
}

// An openLoopFunc sends GETs at a fixed rate for dur, as wrk2 does: request i
// is due at start + i/rate and goes on connection i mod conns; its latency
// counts from when it was due, so an answer that holds a connection past
// the next request's time is charged for that request's wait too (no
// coordinated omission). Both engines speak HTTP/1.1 on raw connections:
// the Go HTTP client costs several times what the servers under test do,
// and the generator shares their cores. They differ only in how they wait.
type openLoopFunc func(t *target, rate float64, dur time.Duration, conns int, timeout time.Duration) (RateResult, error)

// engines are the ways of running an open loop: "threads" everywhere
// (rate_threads.go) and "epoll" on Linux (rate_linux.go), the default
// there and what bench/run measures with.
var engines = map[string]openLoopFunc{
	"threads": openLoopThreads,
}

func engineNames() string {
	names := make([]string, 0, len(engines))
	for k := range engines {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// samples hold what an open loop measured, one slot per request.
type samples struct {
	lat   []time.Duration // from due to the end of the body
	lag   []time.Duration // from due to the write
	svc   []time.Duration // from the write to the end of the body
	codes []int           // 0: failed
}

func newSamples(n int) *samples {
	return &samples{
		lat:   make([]time.Duration, n),
		lag:   make([]time.Duration, n),
		svc:   make([]time.Duration, n),
		codes: make([]int, n),
	}
}

// result summarizes s; elapsed is from the first due time to the last
// answer.
func (s *samples) result(t *target, rate float64, dur time.Duration, conns int, elapsed time.Duration) RateResult {
	n := len(s.codes)
	res := RateResult{Mode: "rate", URL: t.url, Rate: rate, Conns: conns, DurationS: dur.Seconds(), Sent: n}
	ok := make([]time.Duration, 0, n)
	okSvc := make([]time.Duration, 0, n)
	for i, code := range s.codes {
		switch {
		case code == 0:
			res.Errors++
		case code >= 200 && code < 300:
			res.OK++
			ok = append(ok, s.lat[i])
			okSvc = append(okSvc, s.svc[i])
		default:
			res.Non2xx++
		}
	}
	if elapsed > 0 {
		res.AchievedRPS = float64(res.OK) / elapsed.Seconds()
	}
	res.Latency = summarize(ok)
	res.Service = summarize(okSvc)
	res.SendLag = summarize(s.lag)
	return res
}

// target is a URL ready to be requested on raw connections.
type target struct {
	url  string
	addr string
	req  []byte
}

func newTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("URL %q: only http is supported", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gust-loadgen\r\nAccept: */*\r\n\r\n", u.RequestURI(), u.Host)
	return &target{url: raw, addr: addr, req: []byte(req)}, nil
}

type httpConn struct {
	t  *target
	c  net.Conn
	br *bufio.Reader
}

func (t *target) dial() (*httpConn, error) {
	c, err := net.DialTimeout("tcp", t.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &httpConn{t: t, c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (h *httpConn) close() { _ = h.c.Close() }

// maxHeaderLines bounds the header of one answer.
const maxHeaderLines = 200

var errNoLength = errors.New("response has no Content-Length (chunked answers are not supported)")

// get sends the target's request and reads the answer: its status, and
// whether the connection may be reused.
func (h *httpConn) get(timeout time.Duration) (code int, keepAlive bool, err error) {
	if err := h.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, false, err
	}
	if _, err := h.c.Write(h.t.req); err != nil {
		return 0, false, err
	}
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if code, err = statusCode(line); err != nil {
		return 0, false, err
	}
	hd := head{length: -1}
	for lines := 0; ; lines++ {
		if lines == maxHeaderLines {
			return 0, false, fmt.Errorf("more than %d header lines", maxHeaderLines)
		}
		line, err = h.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if err := hd.field(line); err != nil {
			return 0, false, err
		}
	}
	if hd.length < 0 {
		return 0, false, errNoLength
	}
	if _, err := h.br.Discard(int(hd.length)); err != nil {
		return 0, false, err
	}
	return code, !hd.close, nil
}

// statusCode parses a status line such as "HTTP/1.1 200 OK\r\n".
func statusCode(line []byte) (int, error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	return code, nil
}

// head is what the generator needs of an answer's header fields.
type head struct {
	length int64 // Content-Length; start it at -1 (none seen)
	close  bool  // Connection: close
}

// field takes one header line, without its line end.
func (h *head) field(line []byte) error {
	k, v, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return fmt.Errorf("malformed header line %q", line)
	}
	v = bytes.TrimSpace(v)
	switch {
	case bytes.EqualFold(k, []byte("Content-Length")):
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("malformed Content-Length %q", v)
		}
		h.length = n
	case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
		h.close = true
	}
	return nil
}
