package wasm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// misbehave is a guest for the failure paths, on the lean API.
const misbehave = `package main

import (
	"fmt"
	"os"

	"github.com/gustfaas/gust/sdk/lean"
)

var (
	sink  [][]byte
	spins int
	calls int
)

func init() {
	lean.HandleFunc(func(r *lean.Request) *lean.Response {
		calls++
		switch r.Path {
		case "/loop":
			for {
				spins++
			}
		case "/hog":
			for {
				sink = append(sink, make([]byte, 1<<20))
			}
		case "/panic":
			panic("boom: " + r.QueryValue("why"))
		case "/exit":
			os.Exit(7)
		case "/log":
			fmt.Println("to stdout", r.Header.Get("X-Gust-Invocation-Id"))
			fmt.Fprintln(os.Stderr, "to stderr")
		case "/echo":
			resp := lean.Bytes(201, "application/octet-stream", r.Body)
			for k, vs := range r.Header {
				for _, v := range vs {
					resp.Header.Add("Echo-"+k, v)
				}
			}
			resp.Header.Set("Echo-Method", r.Method)
			resp.Header.Set("Echo-Query", r.Query)
			return resp
		}
		return lean.Text(200, fmt.Sprintf("calls=%d\n", calls))
	})
}

func main() {}
`

// logRecorder is a gust.LogSink that keeps every line.
type logRecorder struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	id, stream, text string
}

func (l *logRecorder) FunctionLog(function string, version int, id, stream string, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{id, stream, string(p)})
}

func (l *logRecorder) find(stream, substr string) (logLine, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.lines {
		if ln.stream == stream && strings.Contains(ln.text, substr) {
			return ln, true
		}
	}
	return logLine{}, false
}

func newDriver(t testing.TB) *wasm.Driver {
	t.Helper()
	d, err := wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func version(name string, spec gust.Spec) *gust.Version {
	spec.Runtime = gust.RuntimeWasm
	return &gust.Version{Function: name, Number: 1, Spec: spec}
}

func load(t testing.TB, d *wasm.Driver, path string, spec gust.Spec, logs gust.LogSink) gust.Module {
	t.Helper()
	m, err := d.Load(context.Background(), version("fn", spec), wasmtest.Code(t, path), logs)
	if err != nil {
		t.Fatalf("Load %s: %v", path, err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func start(t testing.TB, m gust.Module) gust.Instance {
	t.Helper()
	inst, err := m.NewInstance(context.Background())
	if err != nil {
		t.Fatalf("NewInstance: %v", err)
	}
	t.Cleanup(func() { inst.Close(context.Background()) })
	return inst
}

func get(path, query string) *gust.Request {
	return &gust.Request{ID: "inv-1", Function: "fn", Version: 1, Method: "GET", Path: path, Query: query, Header: http.Header{}}
}

func invoke(t testing.TB, inst gust.Instance, req *gust.Request) *gust.Response {
	t.Helper()
	resp, err := inst.Invoke(context.Background(), req)
	if err != nil {
		t.Fatalf("Invoke %s %s?%s: %v", req.Method, req.Path, req.Query, err)
	}
	return resp
}

func wantCode(t testing.TB, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s %q", code, msg)
	}
	if got := gust.ErrorCode(err); got != code {
		t.Fatalf("error code %q (%v), want %q", got, err, code)
	}
	if !strings.Contains(gust.ErrorMessage(err), msg) {
		t.Fatalf("error message %q does not contain %q", gust.ErrorMessage(err), msg)
	}
}

func TestReactorHello(t *testing.T) {
	d := newDriver(t)
	// examples/hello draws its instance id in init, without an
	// OnRestore hook, so instances restored from a snapshot would share
	// it: this test checks the normal start (see TestSnapshotRestoresState).
	off := false
	m := load(t, d, wasmtest.Hello(t), gust.Spec{Snapshot: &off}, nil)
	if m.Shape() != wasm.ShapeReactor {
		t.Fatalf("shape %q, want reactor", m.Shape())
	}
	inst := start(t, m)

	resp := invoke(t, inst, get("/", "name=gust"))
	if resp.Status != 200 || string(resp.Body) != "Hello, gust!\n" {
		t.Fatalf("got %d %q", resp.Status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	id := resp.Header.Get("X-Instance-Id")
	if id == "" || resp.Header.Get("X-Instance-Calls") != "1" {
		t.Fatalf("instance headers %v", resp.Header)
	}
	resp = invoke(t, inst, get("/", ""))
	if string(resp.Body) != "Hello, world!\n" {
		t.Fatalf("default name: %q", resp.Body)
	}
	if resp.Header.Get("X-Instance-Id") != id || resp.Header.Get("X-Instance-Calls") != "2" {
		t.Fatalf("warm call did not keep state: %v", resp.Header)
	}

	other := start(t, m)
	resp = invoke(t, other, get("/", ""))
	if resp.Header.Get("X-Instance-Id") == id || resp.Header.Get("X-Instance-Calls") != "1" {
		t.Fatalf("second instance shares state with the first: %v", resp.Header)
	}
}

func TestReactorEnvIsSpecOnly(t *testing.T) {
	t.Setenv("GUST_HOST_SECRET", "leak")
	d := newDriver(t)
	m := load(t, d, wasmtest.Hello(t), gust.Spec{Env: map[string]string{"GREETING": "hi", "B": "2"}}, nil)
	resp := invoke(t, start(t, m), get("/env", ""))
	if got, want := string(resp.Body), "B=2\nGREETING=hi\n"; got != want {
		t.Fatalf("env %q, want %q", got, want)
	}
}

func TestReactorABIRoundTrip(t *testing.T) {
	d := newDriver(t)
	inst := start(t, load(t, d, wasmtest.GoGuest(t, misbehave), gust.Spec{}, nil))
	body := bytes.Repeat([]byte("0123456789"), 10_000) // forces gust_malloc to grow
	req := &gust.Request{
		ID: "inv-echo", Method: "PUT", Path: "/echo", Query: "a=1&b=%20",
		Header: http.Header{"X-Multi": {"one", "two"}, "Content-Type": {"application/x-thing"}},
		Body:   body,
	}
	for i := 0; i < 3; i++ {
		resp := invoke(t, inst, req)
		if resp.Status != 201 || !bytes.Equal(resp.Body, body) {
			t.Fatalf("echo: %d, %d bytes", resp.Status, len(resp.Body))
		}
		if got := resp.Header.Values("Echo-X-Multi"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
			t.Fatalf("multi-value header: %q", got)
		}
		if resp.Header.Get("Echo-Method") != "PUT" || resp.Header.Get("Echo-Query") != "a=1&b=%20" {
			t.Fatalf("method/query: %v", resp.Header)
		}
		if resp.Header.Get("Echo-X-Gust-Invocation-Id") != "inv-echo" {
			t.Fatalf("invocation id header: %v", resp.Header)
		}
	}
	small := invoke(t, inst, get("/", ""))
	if string(small.Body) != "calls=4\n" {
		t.Fatalf("after big requests: %q", small.Body)
	}
}

func TestReactorLogsTaggedWithInvocation(t *testing.T) {
	d := newDriver(t)
	logs := &logRecorder{}
	inst := start(t, load(t, d, wasmtest.GoGuest(t, misbehave), gust.Spec{}, logs))
	req := get("/log", "")
	req.ID = "inv-log"
	invoke(t, inst, req)
	if ln, ok := logs.find("stdout", "to stdout inv-log"); !ok || ln.id != "inv-log" {
		t.Fatalf("stdout line %+v (found %v); all: %+v", ln, ok, logs.lines)
	}
	if ln, ok := logs.find("stderr", "to stderr"); !ok || ln.id != "inv-log" {
		t.Fatalf("stderr line %+v (found %v)", ln, ok)
	}
}

func TestReactorTimeout(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, wasmtest.GoGuest(t, misbehave), gust.Spec{Timeout: gust.Duration(100 * time.Millisecond)}, nil)
	inst := start(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := inst.Invoke(ctx, get("/loop", ""))
	wantCode(t, err, gust.ETIMEOUT, "function timed out after 100ms")

	// The instance is spent; the module still starts fresh ones.
	_, err = inst.Invoke(context.Background(), get("/", ""))
	wantCode(t, err, gust.EINTERNAL, "discarded")
	resp := invoke(t, start(t, m), get("/", ""))
	if string(resp.Body) != "calls=1\n" {
		t.Fatalf("fresh instance: %q", resp.Body)
	}
}

// InvokeTimeout is the invoker's way in: the instance keeps one context
// for its calls. A call after many others with a longer timeout (whose
// timer is still pending) still stops at its own deadline.
func TestReactorInvokeTimeout(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, wasmtest.GoGuest(t, misbehave), gust.Spec{Timeout: gust.Duration(100 * time.Millisecond)}, nil)
	inst := start(t, m).(interface {
		InvokeTimeout(ctx context.Context, timeout time.Duration, req *gust.Request) (*gust.Response, error)
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller's cancellation is not the call's
	for i := 1; i <= 50; i++ {
		resp, err := inst.InvokeTimeout(ctx, time.Minute, get("/", ""))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := fmt.Sprintf("calls=%d\n", i); string(resp.Body) != want {
			t.Fatalf("call %d: %q, want %q", i, resp.Body, want)
		}
	}
	_, err := inst.InvokeTimeout(context.Background(), 100*time.Millisecond, get("/loop", ""))
	wantCode(t, err, gust.ETIMEOUT, "function timed out after 100ms")
	_, err = inst.InvokeTimeout(context.Background(), time.Second, get("/", ""))
	wantCode(t, err, gust.EINTERNAL, "discarded")
}

func TestReactorOutOfMemory(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, wasmtest.GoGuest(t, misbehave), gust.Spec{MemoryMB: 16}, nil)
	inst := start(t, m)
	_, err := inst.Invoke(context.Background(), get("/hog", ""))
	wantCode(t, err, gust.EOOM, "function exceeded its memory limit of 16 MB")
}

func TestReactorPanic(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, wasmtest.GoGuest(t, misbehave), gust.Spec{}, nil)
	_, err := start(t, m).Invoke(context.Background(), get("/panic", "why=bad+input"))
	wantCode(t, err, gust.EFUNCTION, "function panicked: boom: bad input")

	_, err = start(t, m).Invoke(context.Background(), get("/exit", ""))
	wantCode(t, err, gust.EFUNCTION, "exited with code 7")
}

func TestReactorBusyGuard(t *testing.T) {
	d := newDriver(t)
	inst := start(t, load(t, d, wasmtest.GoGuest(t, misbehave), gust.Spec{}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The probes below may hold the instance for a moment: retry until
		// the loop is the one running.
		for i := 0; ; i++ {
			_, err := inst.Invoke(ctx, get("/loop", ""))
			if gust.ErrorCode(err) != gust.EINTERNAL || i == 1000 {
				done <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var err error
	for i := 0; i < 500; i++ {
		if _, err = inst.Invoke(context.Background(), get("/", "")); gust.ErrorCode(err) == gust.EINTERNAL {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wantCode(t, err, gust.EINTERNAL, "instance already in use")
	if err := <-done; gust.ErrorCode(err) == "" {
		t.Fatal("canceled loop returned no error")
	}
}

func TestLoadRejectsBadCode(t *testing.T) {
	d := newDriver(t)
	missingMalloc := wasmtest.CGuest(t, `
__attribute__((export_name("gust_handle")))
long long gust_handle(int p, int n) { return 0; }
int main(void) { return 0; }
`)
	foreignImport := wasmtest.CGuest(t, `
__attribute__((import_module("env"), import_name("host_secret")))
int host_secret(void);
int main(void) { return host_secret(); }
`)
	tests := []struct {
		name string
		code []byte
		msg  string
	}{
		{"random bytes", []byte("this is not wasm at all"), "not a WebAssembly module (bad magic)"},
		{"empty", nil, "bad magic"},
		{"truncated", []byte("\x00asm\x01\x00\x00\x00\x01"), "invalid WebAssembly module"},
		{"no exports", []byte("\x00asm\x01\x00\x00\x00"), "module exports neither gust_handle+gust_malloc (a gust reactor) nor _start (a WASI command)"},
		{"reactor without gust_malloc", wasmtest.Code(t, missingMalloc), "exports gust_handle but not gust_malloc"},
		{"foreign import", wasmtest.Code(t, foreignImport), "module imports function env.host_secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Load(context.Background(), version("fn", gust.Spec{}), tt.code, nil)
			wantCode(t, err, gust.EINVALID, tt.msg)
		})
	}
}

func TestWAGIHelloC(t *testing.T) {
	d := newDriver(t)
	logs := &logRecorder{}
	m := load(t, d, wasmtest.HelloC(t), gust.Spec{}, logs)
	if m.Shape() != wasm.ShapeWAGI {
		t.Fatalf("shape %q, want wagi", m.Shape())
	}
	inst := start(t, m)
	req := &gust.Request{
		ID: "inv-c", Method: "POST", Path: "/a/b", Query: "x=1&status=404",
		Header: http.Header{"User-Agent": {"gust-test/1"}, "Content-Type": {"text/plain"}},
		Body:   []byte("hello body"),
	}
	resp := invoke(t, inst, req)
	if resp.Status != 404 {
		t.Fatalf("status %d, want 404", resp.Status)
	}
	want := "method=POST\npath=/a/b\nquery=x=1&status=404\nbody=10\nuser-agent=gust-test/1\ninvocation=inv-c\n"
	if string(resp.Body) != want {
		t.Fatalf("body %q, want %q", resp.Body, want)
	}
	if resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Hello-C") != "yes" {
		t.Fatalf("headers %v", resp.Header)
	}
	if ln, ok := logs.find("stderr", "hello-c served POST /a/b"); !ok || ln.id != "inv-c" {
		t.Fatalf("stderr line %+v (found %v)", ln, ok)
	}

	// The same handle runs the next request in a fresh instance.
	resp = invoke(t, inst, get("/", ""))
	if resp.Status != 200 || !strings.Contains(string(resp.Body), "body=0\n") {
		t.Fatalf("second call: %d %q", resp.Status, resp.Body)
	}

	_, err := inst.Invoke(context.Background(), get("/", "exit=3"))
	wantCode(t, err, gust.EFUNCTION, "function exited with code 3")
}

func TestWAGIMalformedOutputAndTimeout(t *testing.T) {
	d := newDriver(t)
	noBlank := wasmtest.CGuest(t, `#include <stdio.h>
int main(void) { printf("Content-Type: text/plain\nno blank line"); return 0; }
`)
	_, err := start(t, load(t, d, noBlank, gust.Spec{}, nil)).Invoke(context.Background(), get("/", ""))
	wantCode(t, err, gust.EFUNCTION, "no blank line after the headers")

	redirect := wasmtest.CGuest(t, `#include <stdio.h>
int main(void) { printf("Location: /elsewhere\n\n"); return 0; }
`)
	resp := invoke(t, start(t, load(t, d, redirect, gust.Spec{}, nil)), get("/", ""))
	if resp.Status != 302 || resp.Header.Get("Location") != "/elsewhere" {
		t.Fatalf("redirect: %d %v", resp.Status, resp.Header)
	}

	spin := wasmtest.CGuest(t, `volatile int n;
int main(void) { for (;;) n++; }
`)
	inst := start(t, load(t, d, spin, gust.Spec{Timeout: gust.Duration(50 * time.Millisecond)}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = inst.Invoke(ctx, get("/", ""))
	wantCode(t, err, gust.ETIMEOUT, "function timed out after 50ms")
}

func TestCompilationCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	code := wasmtest.Code(t, wasmtest.HelloC(t))
	for i := 0; i < 2; i++ {
		d, err := wasm.New(wasm.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		m, err := d.Load(context.Background(), version("fn", gust.Spec{}), code, nil)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Fatalf("cache dir empty after load %d (%v)", i+1, err)
		}
		inst, err := m.NewInstance(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if resp := invoke(t, inst, get("/", "")); resp.Status != 200 {
			t.Fatalf("status %d", resp.Status)
		}
		inst.Close(context.Background())
		m.Close(context.Background())
		if err := d.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClosedDriver(t *testing.T) {
	d, err := wasm.New(wasm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Runtime() != gust.RuntimeWasm {
		t.Fatalf("runtime %q", d.Runtime())
	}
	d.Close(context.Background())
	_, err = d.Load(context.Background(), version("fn", gust.Spec{}), wasmtest.Code(t, wasmtest.HelloC(t)), nil)
	if !errors.Is(err, err) || gust.ErrorCode(err) != gust.EUNAVAILABLE {
		t.Fatalf("load on closed driver: %v", err)
	}
}
