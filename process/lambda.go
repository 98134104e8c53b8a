package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust"
)

// Runtime API paths, as AWS Lambda serves them to a runtime.
const (
	apiNext      = "/2018-06-01/runtime/invocation/next"
	apiInvoke    = "/2018-06-01/runtime/invocation/{id}/"
	apiInitError = "/2018-06-01/runtime/init/error"
	// apiSpecialize is gust's own: a pre-warmed runtime client asks it
	// which function to become, and waits for the answer. It answers
	// once per instance, and only on pre-warmed workers.
	apiSpecialize = "/2018-06-01/runtime/gust/specialize"
)

// event is one invocation handed to the runtime.
type event struct {
	id       string
	body     []byte
	deadline time.Time
	trace    string
	done     chan result // buffered: the handler never blocks on it
	// lost is signalled (buffered, never blocking) when next took the
	// event but the runtime cannot have received it: its connection was
	// gone before or while the event was written. The event is then
	// offered again.
	lost chan struct{}
}

func newEvent(id string, body []byte, deadline time.Time, trace string) *event {
	return &event{id: id, body: body, deadline: deadline, trace: trace, done: make(chan result, 1), lost: make(chan struct{}, 1)}
}

// result is what the runtime posted for an event.
type result struct {
	body    []byte
	failed  bool   // posted to .../error
	errType string // Lambda-Runtime-Function-Error-Type
	tooBig  bool
}

// runtimeAPI serves the Lambda Runtime API to one instance, on a port of
// its own on 127.0.0.1. One event is in flight at a time.
type runtimeAPI struct {
	ln      net.Listener
	srv     *http.Server
	maxBody int64

	events  chan *event
	ready   chan struct{} // closed at the first GET next: init is done
	initErr chan []byte   // what POST init/error said
	closing chan struct{}

	// A pre-warmed worker's client asks for its specialization (asked
	// closes) and gets the one value sent on spec.
	prewarmed bool
	asked     chan struct{}
	askOnce   sync.Once
	spec      chan []byte

	readyOnce sync.Once
	mu        sync.Mutex
	cur       *event
	arn       string

	// taken, if set, runs in next after it took an event and before it
	// writes it: tests use it to break the connection at that moment.
	taken func(*http.Request)
}

// newRuntimeAPI returns the API of one instance; serve starts it on a
// listener: TCP on 127.0.0.1 in the host's network, or the bridge from an
// instance's own.
func newRuntimeAPI(function string, maxBody int64) *runtimeAPI {
	a := &runtimeAPI{
		arn: functionARN(function), maxBody: maxBody,
		events: make(chan *event), ready: make(chan struct{}),
		initErr: make(chan []byte, 1), closing: make(chan struct{}),
		asked: make(chan struct{}), spec: make(chan []byte, 1),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiNext, a.next)
	mux.HandleFunc("POST "+apiInvoke+"response", func(w http.ResponseWriter, r *http.Request) { a.post(w, r, false) })
	mux.HandleFunc("POST "+apiInvoke+"error", func(w http.ResponseWriter, r *http.Request) { a.post(w, r, true) })
	mux.HandleFunc("POST "+apiInitError, a.initError)
	mux.HandleFunc("GET "+apiSpecialize, a.specialization)
	// No write timeout: next blocks for as long as the instance idles.
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return a
}

func (a *runtimeAPI) serve(ln net.Listener) {
	a.ln = ln
	go func() { _ = a.srv.Serve(ln) }()
}

func (a *runtimeAPI) close() {
	close(a.closing)
	_ = a.srv.Close()
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}` + "\n"))
}

func (a *runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	a.readyOnce.Do(func() { close(a.ready) })
	var ev *event
	select {
	case ev = <-a.events:
	case <-r.Context().Done():
		return
	case <-a.closing:
		apiError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "instance is shutting down")
		return
	}
	if a.taken != nil {
		a.taken(r)
	}
	// The request's context ends when the runtime's connection closes: if
	// it has, or if writing the event fails, the runtime cannot have read
	// the whole event, and the invocation offers it again rather than
	// wait for its timeout.
	if r.Context().Err() != nil {
		a.lose(ev)
		return
	}
	a.mu.Lock()
	a.cur = ev
	arn := a.arn
	a.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", ev.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(ev.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", arn)
	h.Set("Lambda-Runtime-Trace-Id", ev.trace)
	h.Set("Content-Length", strconv.Itoa(len(ev.body)))
	_, err := w.Write(ev.body)
	if err == nil {
		err = http.NewResponseController(w).Flush()
	}
	if err != nil {
		a.lose(ev)
	}
}

// lose hands back an event that next took but could not deliver.
func (a *runtimeAPI) lose(ev *event) {
	a.mu.Lock()
	if a.cur == ev {
		a.cur = nil
	}
	a.mu.Unlock()
	select {
	case ev.lost <- struct{}{}:
	default:
	}
}

func (a *runtimeAPI) post(w http.ResponseWriter, r *http.Request, failed bool) {
	id := r.PathValue("id")
	a.mu.Lock()
	ev := a.cur
	if ev == nil || ev.id != id {
		a.mu.Unlock()
		apiError(w, http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("no invocation %q in flight", id))
		return
	}
	a.cur = nil
	a.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, a.maxBody+1))
	res := result{body: body, failed: failed, errType: r.Header.Get("Lambda-Runtime-Function-Error-Type")}
	if err != nil {
		res = result{failed: true, errType: "Runtime.ReadError", body: []byte(fmt.Sprintf(`{"errorMessage":%q}`, err.Error()))}
	} else if int64(len(body)) > a.maxBody {
		res = result{tooBig: true}
	}
	ev.done <- res
	if res.tooBig {
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("response is larger than %d bytes", a.maxBody))
		return
	}
	accepted(w)
}

// setFunction names the function a pre-warmed worker has become.
func (a *runtimeAPI) setFunction(name string) {
	a.mu.Lock()
	a.arn = functionARN(name)
	a.mu.Unlock()
}

// specialization answers a pre-warmed runtime client's request for its
// function, once: a second request (the function's own code asking after
// another function's settings) is refused.
func (a *runtimeAPI) specialization(w http.ResponseWriter, r *http.Request) {
	first := false
	if a.prewarmed {
		a.askOnce.Do(func() { first = true; close(a.asked) })
	}
	if !first {
		apiError(w, http.StatusForbidden, "Forbidden", "this instance is already specialized")
		return
	}
	select {
	case b := <-a.spec:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	case <-r.Context().Done():
	case <-a.closing:
		apiError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "instance is shutting down")
	}
}

func (a *runtimeAPI) initError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if r.Header.Get("Lambda-Runtime-Function-Error-Type") != "" && !strings.Contains(string(body), "errorType") {
		body = []byte(fmt.Sprintf(`{"errorType":%q,"errorMessage":%q}`, r.Header.Get("Lambda-Runtime-Function-Error-Type"), strings.TrimSpace(string(body))))
	}
	select {
	case a.initErr <- body:
	default:
	}
	accepted(w)
}

// lambdaInstance is a process speaking the Lambda Runtime API. The pool
// calls Invoke on it one at a time (Load refuses PerInstanceConcurrency
// above 1); the mutex only guards against misuse.
type lambdaInstance struct {
	*instance
	api    *runtimeAPI
	mu     sync.Mutex
	closed bool
}

func (m *module) newLambda(ctx context.Context, in *instance) (*lambdaInstance, error) {
	if m.runtimeDir != "" && m.ownNet() {
		w := m.d.prewarm.take(m.spec.Runtime)
		if w != nil {
			li, retry, err := m.fromWorker(ctx, in, w)
			// Refilled after the specialization, which then has the
			// machine's cores to itself.
			m.d.prewarm.refill(m.spec.Runtime)
			if !retry {
				return li, err
			}
			m.d.log.Warn("a pre-warmed worker could not be specialized, starting cold", "function", m.function, "err", err)
		} else {
			m.d.prewarm.refill(m.spec.Runtime)
		}
	}
	api := newRuntimeAPI(m.function, m.d.cfg.MaxResponseBytes)
	in.cleanup = append(in.cleanup, api.close)
	li := &lambdaInstance{instance: in, api: api}
	if m.ownNet() {
		addr := "127.0.0.1:" + strconv.Itoa(nsAPIPort)
		if err := in.start(ctx, m.lambdaVars(ctx, addr, in), 0, nsAPIPort); err != nil {
			return nil, err
		}
		api.serve(newBridgeListener(in.p))
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("runtime API listener: %w", err)
		}
		// The host's loopback is open to every local process: only the
		// instance's own user may take its events and answer them.
		api.serve(&ownerListener{Listener: ln, uid: m.peerUID(), function: m.function, log: m.d.log})
		if err := in.start(ctx, m.lambdaVars(ctx, ln.Addr().String(), in), 0, 0); err != nil {
			return nil, err
		}
	}
	return li, li.waitReady(ctx)
}

// waitReady waits for the runtime's first "next", its init error, its
// exit, or the start timeout.
func (li *lambdaInstance) waitReady(ctx context.Context) error {
	api := li.api
	limit := li.m.d.cfg.StartTimeout
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-api.ready:
		return nil
	case body := <-api.initErr:
		le := parseLambdaError(body, "")
		li.logError("", "init", le)
		li.p.kill()
		return gust.WrapError(gust.EFUNCTION, newFunctionError(le, false), "function initialization failed: %s: %s", le.ErrorType, le.ErrorMessage)
	case <-li.p.exited:
		return li.exitedError("during start")
	case <-ctx.Done():
		return li.ctxError(ctx, "start")
	case <-timer.C:
		li.p.kill()
		return gust.Errorf(gust.EFUNCTION, "function did not ask the Runtime API for an event within %s", limit)
	}
}

// logError writes a function error to the function's log in Lambda's
// JSON shape, stack trace included.
func (li *lambdaInstance) logError(id, phase string, le lambdaError) {
	b, _ := json.Marshal(le)
	li.out.log(id, "stderr", append([]byte(phase+" error: "), append(b, '\n')...))
}

func newTraceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	var p [8]byte
	_, _ = rand.Read(p[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", now.Unix(), hex.EncodeToString(b[:]), hex.EncodeToString(p[:]))
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (li *lambdaInstance) Invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	li.mu.Lock()
	defer li.mu.Unlock()
	defer li.coldStartOver()
	if li.closed {
		return nil, gust.Errorf(gust.EUNAVAILABLE, "instance is closed")
	}
	li.out.begin(req.ID)
	defer li.out.end(req.ID)
	now := time.Now()
	body, err := newAPIGatewayEvent(req, now)
	if err != nil {
		return nil, gust.WrapError(gust.EINVALID, err, "cannot build the event")
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now.Add(li.m.spec.Timeout.D())
	}
	id := req.ID
	if id == "" {
		id = newRequestID()
	}
	ev := newEvent(id, body, deadline, newTraceID(now))
	res, err := li.deliver(ctx, ev)
	if err != nil {
		return nil, err
	}
	switch {
	case res.tooBig:
		li.p.kill()
		return nil, gust.Errorf(gust.EFUNCTION, "function response is larger than %d bytes", li.m.d.cfg.MaxResponseBytes)
	case res.failed:
		// The runtime caught the error and asks for the next event: the
		// process stays, as on Lambda, and the pool keeps it warm.
		le := parseLambdaError(res.body, res.errType)
		li.logError(req.ID, "function", le)
		return nil, gust.WrapError(gust.EFUNCTION, newFunctionError(le, true), "function error: %s: %s", le.ErrorType, le.ErrorMessage)
	}
	resp, err := mapResponse(res.body)
	if err != nil {
		// The runtime delivered a value gust cannot map (NaN from a
		// Python handler, a statusCode of null): the process is as
		// healthy as after a handler error, and stays warm.
		return nil, gust.WrapError(gust.EFUNCTION, gust.ErrInstanceHealthy, "%s", gust.ErrorMessage(err))
	}
	return resp, nil
}

// maxRedeliveries bounds how often one event is offered again after the
// runtime's connection broke as it took it.
const maxRedeliveries = 3

// deliver hands the event to the runtime and waits for its result.
func (li *lambdaInstance) deliver(ctx context.Context, ev *event) (result, error) {
	res, end := li.api.deliver(ctx, ev, li.p.exited)
	switch end {
	case endCanceled:
		return result{}, li.ctxError(ctx, "")
	case endExitedBefore:
		return result{}, li.exitedError("before the event")
	case endExitedDuring:
		return result{}, li.exitedError("while handling the event")
	case endLost:
		li.p.kill()
		return result{}, gust.Errorf(gust.EFUNCTION, "the function's runtime closed its Runtime API connection as it took the event, %d times", maxRedeliveries+1)
	}
	return res, nil
}

// deliveryEnd is how a delivery ended.
type deliveryEnd int

const (
	delivered       deliveryEnd = iota
	endCanceled                 // ctx ended
	endExitedBefore             // the process exited before it took the event
	endExitedDuring             // the process exited before it answered
	endLost                     // the event was lost more than maxRedeliveries times
)

// deliver offers the event to the runtime's next and waits for its
// result. An event whose /next connection broke before the runtime could
// read it is offered again, up to maxRedeliveries times.
func (a *runtimeAPI) deliver(ctx context.Context, ev *event, exited <-chan struct{}) (result, deliveryEnd) {
	for attempt := 0; ; attempt++ {
		select {
		case a.events <- ev:
		case <-ctx.Done():
			return result{}, endCanceled
		case <-exited:
			return result{}, endExitedBefore
		}
		select {
		case res := <-ev.done:
			return res, delivered
		case <-ev.lost:
			if attempt >= maxRedeliveries {
				return result{}, endLost
			}
		case <-ctx.Done():
			return result{}, endCanceled
		case <-exited:
			return result{}, endExitedDuring
		}
	}
}

// Close kills the process and frees the instance.
func (li *lambdaInstance) Close(ctx context.Context) error {
	li.mu.Lock()
	li.closed = true
	li.mu.Unlock()
	li.stop()
	return nil
}
