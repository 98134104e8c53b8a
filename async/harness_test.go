package async

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/invoke"
	"github.com/gustfaas/gust/pool"
	"github.com/gustfaas/gust/registry"
	"github.com/gustfaas/gust/secrets"
	"github.com/gustfaas/gust/wasm"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// guestSrc is the test function. It panics (a function error) when the
// body is "fail:N" and this is attempt N or earlier ("fail:always": every
// attempt), or when its env has BROKEN=1; sleeps ?sleep=MS; answers
// ?status=CODE; otherwise echoes the body, with the attempt and the
// CloudEvent attributes in headers.
const guestSrc = `package main

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gustfaas/gust/sdk"
)

func init() {
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		attempt, _ := strconv.Atoi(r.Header.Get("X-Gust-Attempt"))
		if os.Getenv("BROKEN") == "1" {
			panic("broken on purpose")
		}
		if n, ok := strings.CutPrefix(string(b), "fail:"); ok {
			if k, err := strconv.Atoi(n); n == "always" || (err == nil && attempt <= k) {
				panic("failing attempt " + strconv.Itoa(attempt))
			}
		}
		q := r.URL.Query()
		if ms, _ := strconv.Atoi(q.Get("sleep")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		for _, h := range []string{"X-Gust-Attempt", "Ce-Specversion", "Ce-Type", "Ce-Source", "Ce-Id", "Ce-Time", "Ce-Subject"} {
			if v := r.Header.Get(h); v != "" {
				w.Header().Set("Echo-"+h, v)
			}
		}
		if s, _ := strconv.Atoi(q.Get("status")); s > 0 {
			w.WriteHeader(s)
		}
		w.Write(b)
	})
}

func main() {}
`

// counter wraps the invoker: it counts calls per invocation id and trigger,
// and hold makes chosen functions look throttled (the function is never
// run), which a real pool cannot be made to do on cue.
type counter struct {
	Invoker
	mu    sync.Mutex
	calls map[string]int
	trig  map[string]int
	last  map[string]http.Header // by trigger
	hold  map[string]bool
	gate  chan struct{} // if set, Invoke waits for it to close
}

func newCounter(inv Invoker) *counter {
	return &counter{Invoker: inv, calls: map[string]int{}, trig: map[string]int{}, last: map[string]http.Header{}, hold: map[string]bool{}}
}

func (c *counter) Invoke(ctx context.Context, v *gust.Version, req *gust.Request) (*gust.Response, error) {
	if err := c.held(v); err != nil {
		return nil, err
	}
	c.enter(req)
	return c.Invoker.Invoke(ctx, v, req)
}

// Admit is the wrapped invoker's, so that accepts see its refusals.
func (c *counter) Admit(v *gust.Version) error {
	if ad, ok := c.Invoker.(Admitter); ok {
		return ad.Admit(v)
	}
	return nil
}

// held refuses a call of a held function.
func (c *counter) held(v *gust.Version) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold[v.Function] {
		return gust.Errorf(gust.ETHROTTLED, "held by the test")
	}
	return nil
}

// enter counts a call and waits for the gate.
func (c *counter) enter(req *gust.Request) {
	c.mu.Lock()
	c.calls[req.ID]++
	c.trig[req.Trigger]++
	c.last[req.Trigger] = req.Header.Clone()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
}

// invoker is c as Async's Invoker: a StartInvoker if what it wraps is one.
func (c *counter) invoker() Invoker {
	if _, ok := c.Invoker.(StartInvoker); ok {
		return startCounter{c}
	}
	return c
}

// startCounter counts a call once it has started, and holds it at the
// gate as it would be held running.
type startCounter struct{ *counter }

func (c startCounter) InvokeStarted(ctx context.Context, v *gust.Version, req *gust.Request, started func() error) (*gust.Response, error) {
	if err := c.held(v); err != nil {
		return nil, err
	}
	return c.Invoker.(StartInvoker).InvokeStarted(ctx, v, req, func() error {
		if err := started(); err != nil {
			return err
		}
		c.enter(req)
		return nil
	})
}

// records keeps the invoker's invocation records.
type records struct {
	mu   sync.Mutex
	list []gust.Invocation
}

func (r *records) Record(inv *gust.Invocation) {
	r.mu.Lock()
	r.list = append(r.list, *inv)
	r.mu.Unlock()
}

// of returns the records of invocation id and the count of throttled
// records of any invocation.
func (r *records) of(id string) (mine []gust.Invocation, throttled int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, inv := range r.list {
		if inv.ID == id {
			mine = append(mine, inv)
		}
		if inv.Status == gust.StatusThrottled {
			throttled++
		}
	}
	return mine, throttled
}

func (c *counter) setHold(fn string, on bool) {
	c.mu.Lock()
	c.hold[fn] = on
	c.mu.Unlock()
}

func (c *counter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

func (c *counter) lastHeader(trigger string) http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[trigger]
}

// counts returns a copy of the calls per invocation id.
func (c *counter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

func (c *counter) triggered(trigger string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trig[trigger]
}

// harness is a node's worth of real parts: embedded NATS, registry, wasm
// driver, pool budget, invoker and Async behind an httptest server.
type harness struct {
	t     testing.TB
	dir   string
	brk   *broker.Broker
	reg   *registry.Registry
	sec   *secrets.Store
	drv   *wasm.Driver
	inv   *invoke.Invoker
	cnt   *counter
	rec   *records
	a     *Async
	srv   *httptest.Server
	c     *client.Client
	once  sync.Once
	extra []*Async
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(mod func(*Config)) Config {
	cfg := Config{
		Workers:         4,
		NewID:           invoke.NewID,
		AckWait:         2 * time.Second,
		ThrottleDelay:   50 * time.Millisecond,
		HoldUnavailable: 2 * time.Second,
		CallbackBackoff: 20 * time.Millisecond,
		ResyncEvery:     200 * time.Millisecond,
		Logger:          testLogger(),
		// The callback servers of the tests listen on 127.0.0.1.
		CallbackAllowPrivate: true,
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func newHarness(t testing.TB, dir string, mod func(*Config)) *harness {
	t.Helper()
	return newHarnessWrapped(t, dir, mod, nil)
}

// newHarnessWrapped is newHarness whose Async calls wrap(the counter)
// instead of the counter, if wrap is set.
func newHarnessWrapped(t testing.TB, dir string, mod func(*Config), wrap func(Invoker) Invoker) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := &harness{t: t, dir: dir, rec: &records{}}
	var err error
	h.brk, err = broker.Start(ctx, broker.Config{DataDir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h.reg, err = registry.Open(ctx, h.brk.JetStream(), registry.Config{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	keys, _, err := secrets.LoadKeyring(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	h.sec, err = secrets.Open(ctx, h.brk.JetStream(), 1, keys)
	if err != nil {
		t.Fatal(err)
	}
	h.drv, err = wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(t), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(mod)
	// A test that traces async work traces the invocations too.
	h.inv = invoke.New(invoke.Config{Registry: h.reg, Drivers: []gust.Driver{h.drv}, Budget: pool.NewBudget(2048), Tracer: cfg.Tracer, Recorder: h.rec, Logger: testLogger()})
	h.cnt = newCounter(h.inv)
	cfg.Invoker, cfg.Registry = h.cnt.invoker(), h.reg
	if wrap != nil {
		cfg.Invoker = wrap(cfg.Invoker)
	}
	if cfg.Secrets == nil {
		cfg.Secrets = h.sec
	}
	h.a, err = New(ctx, h.brk.JetStream(), h.brk.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.a.Routes(mux, func(next http.Handler) http.Handler { return next })
	mux.Handle(WebhookPrefix, h.a.WebhookHandler())
	h.srv = httptest.NewServer(mux)
	h.c = client.New(h.srv.URL, "")
	t.Cleanup(h.close)
	return h
}

// another starts a second Async on the same NATS, as a second node would.
func (h *harness) another(mod func(*Config)) *Async {
	h.t.Helper()
	cfg := testConfig(mod)
	cfg.Invoker, cfg.Registry = h.cnt.invoker(), h.reg
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := New(ctx, h.brk.JetStream(), h.brk.Conn(), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.extra = append(h.extra, a)
	return a
}

func (h *harness) close() {
	h.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		h.srv.Close()
		for _, a := range h.extra {
			_ = a.Close(ctx)
		}
		if err := h.a.Close(ctx); err != nil {
			h.t.Errorf("closing async: %v", err)
		}
		_ = h.inv.Close(ctx)
		_ = h.drv.Close(ctx)
		h.reg.Close()
		h.brk.Close()
	})
}

var (
	guestOnce sync.Once
	guestCode []byte
)

// guest builds the test function once and has wazero compile it into the
// shared cache, so no test's deadlines pay for a cold compile (seconds
// under -race on a busy machine).
func (h *harness) guest() []byte {
	t := h.t
	t.Helper()
	guestOnce.Do(func() {
		code := wasmtest.Code(t, wasmtest.GoGuest(t, guestSrc))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		m, err := h.drv.Load(ctx, &gust.Version{Function: "warm", Number: 1, Spec: gust.Spec{}.WithDefaults()}, code, nil)
		if err != nil {
			t.Fatalf("compiling the guest: %v", err)
		}
		_ = m.Close(ctx)
		guestCode = code
	})
	if guestCode == nil {
		t.Fatal("guest did not build")
	}
	return guestCode
}

func (h *harness) deploy(name string, spec gust.Spec) *gust.Version {
	h.t.Helper()
	code := h.guest() // before the deadline: a build may take minutes
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ValidateSpec(spec); err != nil {
		h.t.Fatalf("ValidateSpec: %v", err)
	}
	v, err := h.reg.Deploy(ctx, name, spec, "reactor", code)
	if err != nil {
		h.t.Fatalf("deploy %s: %v", name, err)
	}
	return v
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (h *harness) post(path string, body []byte, header map[string]string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// accept posts an async invocation and returns its id, failing unless 202.
func (h *harness) accept(path string, body []byte, header map[string]string) string {
	h.t.Helper()
	r := h.post(path, body, header)
	if r.status != http.StatusAccepted {
		h.t.Fatalf("POST %s = %d %s, want 202", path, r.status, r.body)
	}
	var acc Accepted
	if err := json.Unmarshal(r.body, &acc); err != nil || acc.ID == "" || acc.ID != r.header.Get(HeaderInvocationID) {
		h.t.Fatalf("202 body %s, header id %q", r.body, r.header.Get(HeaderInvocationID))
	}
	return acc.ID
}

// waitStatus polls the status of id until it is want, or fails.
func (h *harness) waitStatus(id, want string) *client.InvocationStatus {
	h.t.Helper()
	var last *client.InvocationStatus
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s, err := h.c.Invocation(context.Background(), id)
		if err == nil {
			last = s
			if s.Status == want {
				return s
			}
			if s.Final() {
				h.t.Fatalf("invocation %s ended %s (error %q), want %s", id, s.Status, s.Error, want)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("invocation %s did not become %s; last %+v", id, want, last)
	return nil
}

// eventually polls cond until it holds, or fails with what.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
