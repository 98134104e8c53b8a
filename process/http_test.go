package process

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

func httpFn(t *testing.T) []byte {
	return makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: goBuild(t, "", "./testdata/httpfn")})
}

func TestHTTPProtocol(t *testing.T) {
	d := newDriver(t)
	sink := &logSink{}
	m := load(t, d, "echo", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolHTTP, Env: map[string]string{"GREETING": "hi"}}, httpFn(t), sink)
	if m.Shape() != gust.ProtocolHTTP {
		t.Errorf("shape %q", m.Shape())
	}
	in := start(t, m)

	resp := mustInvoke(t, in, &gust.Request{ID: "inv-1", Method: "POST", Path: "/echo", Query: "a=1&b=2",
		Header: http.Header{"X-Test": {"yes"}}, Body: []byte("payload")})
	if resp.Status != 201 || string(resp.Body) != "payload" {
		t.Fatalf("got %d %q", resp.Status, resp.Body)
	}
	for k, want := range map[string]string{"X-Method": "POST", "X-Query": "a=1&b=2", "X-Test": "yes", "X-Invocation": "inv-1"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	// Warm: the same process answers again, and its output reaches the
	// log tagged with the invocation.
	resp = mustInvoke(t, in, &gust.Request{ID: "inv-2", Path: "/log", Query: "m=x"})
	if string(resp.Body) != "logged" {
		t.Fatalf("got %q", resp.Body)
	}
	sink.waitLog(t, "inv-2 stdout hello from stdout x")
	sink.waitLog(t, "inv-2 stderr hello from stderr")
}

func TestHTTPCleanEnvironment(t *testing.T) {
	t.Setenv("GUST_HOST_SECRET", "leak")
	d := newDriver(t)
	m := load(t, d, "env", gust.Spec{Runtime: gust.RuntimeProcess, Env: map[string]string{"GREETING": "hi", "QUOTE": "it's \"x\" $HOME"}}, httpFn(t), nil)
	in := start(t, m)
	var env []string
	if err := json.Unmarshal(mustInvoke(t, in, &gust.Request{Path: "/env"}).Body, &env); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	allowed := map[string]bool{"GREETING": true, "QUOTE": true, "PORT": true, "PATH": true, "HOME": true, "TMPDIR": true,
		"LANG": true, "TZ": true, "LAMBDA_TASK_ROOT": true, "PWD": true}
	for k := range got {
		if !allowed[k] {
			t.Errorf("unexpected variable %s=%s in %v", k, got[k], sortedEnv(env))
		}
	}
	if got["GREETING"] != "hi" || got["QUOTE"] != "it's \"x\" $HOME" || got["PORT"] == "" || got["TZ"] != "UTC" {
		t.Errorf("environment %v", sortedEnv(env))
	}
}

func TestHTTPPerInstanceConcurrency(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, "conc", gust.Spec{Runtime: gust.RuntimeProcess, PerInstanceConcurrency: 3}, httpFn(t), nil)
	in := start(t, m)
	var wg sync.WaitGroup
	errs := make(chan string, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := invoke(t, in, 20*time.Second, &gust.Request{Path: "/barrier", Query: "n=3"})
			if err != nil {
				errs <- err.Error()
				return
			}
			errs <- string(resp.Body)
		}()
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		if got != "together" {
			t.Errorf("got %q, want all three requests inside the instance at once", got)
		}
	}
}

func TestHTTPTimeoutKills(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, "slow", gust.Spec{Runtime: gust.RuntimeProcess, Timeout: gust.Duration(300 * time.Millisecond)}, httpFn(t), nil)
	in := start(t, m)
	_, err := invoke(t, in, 300*time.Millisecond, &gust.Request{Path: "/sleep", Query: "ms=60000"})
	wantCode(t, err, gust.ETIMEOUT)
	hi := in.(*httpInstance)
	select {
	case <-hi.p.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("process still running after a timeout")
	}
}

func TestHTTPCrash(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, "crash", gust.Spec{Runtime: gust.RuntimeProcess}, httpFn(t), nil)
	in := start(t, m)
	_, err := invoke(t, in, 10*time.Second, &gust.Request{Path: "/exit"})
	wantCode(t, err, gust.EFUNCTION)
	if !strings.Contains(err.Error(), "exited with code 3") || !strings.Contains(err.Error(), "giving up") {
		t.Errorf("error %q should say how it ended and what it said", err)
	}
}

func TestHTTPStartFailures(t *testing.T) {
	d := newDriver(t)
	t.Run("exits", func(t *testing.T) {
		code := makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: []byte("#!/bin/sh\necho no luck >&2\nexit 7\n")})
		m := load(t, d, "exits", gust.Spec{Runtime: gust.RuntimeProcess}, code, nil)
		_, err := m.NewInstance(t.Context())
		wantCode(t, err, gust.EFUNCTION)
		if !strings.Contains(err.Error(), "exited with code 7 during start: no luck") {
			t.Errorf("error %q", err)
		}
	})
	t.Run("never listens", func(t *testing.T) {
		d2, err := New(Config{WorkDir: t.TempDir(), StartTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer d2.Close(t.Context())
		code := makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: []byte("#!/bin/sh\nexec sleep 60\n")})
		m := load(t, d2, "deaf", gust.Spec{Runtime: gust.RuntimeProcess}, code, nil)
		_, err = m.NewInstance(t.Context())
		wantCode(t, err, gust.EFUNCTION)
		if !strings.Contains(err.Error(), "did not listen on $PORT") {
			t.Errorf("error %q", err)
		}
	})
}

// TestHTTPListenAfterReady checks the helper's watch on listen calls
// (listen_linux.go): a listener on another port before $PORT's does not
// count as ready, and listen keeps working once the function is ready.
func TestHTTPListenAfterReady(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, "listen", gust.Spec{Runtime: gust.RuntimeProcess, Env: map[string]string{"LISTEN_FIRST": "1"}}, httpFn(t), nil)
	in := start(t, m)
	for i := 0; i < 3; i++ {
		resp, err := invoke(t, in, 5*time.Second, &gust.Request{Path: "/listen"})
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.Body) != "ok" {
			t.Fatalf("listen inside the function: %s", resp.Body)
		}
	}
	if resp := mustInvoke(t, in, &gust.Request{Method: "POST", Path: "/echo", Body: []byte("x")}); resp.Status != 201 {
		t.Fatalf("got %d", resp.Status)
	}
}

// The function is asked for the path it was invoked with: a '%', '?' or
// '#' in the (decoded) path stays in the path, escaped again on the wire,
// and the query goes as the client sent it.
func TestHTTPPathAsSent(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, "uri", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolHTTP}, httpFn(t), nil)
	in := start(t, m)
	for _, tc := range []struct{ path, query, wantURI string }{
		{"/uri/plain", "a=1&b=%2F", "/uri/plain?a=1&b=%2F"},
		{"/uri/100%", "", "/uri/100%25"},
		{"/uri/a?b", "q=1", "/uri/a%3Fb?q=1"},
		{"/uri/a#b", "", "/uri/a%23b"},
		{"/uri/a b", "", "/uri/a%20b"},
	} {
		resp, err := invoke(t, in, 10*time.Second, &gust.Request{Path: tc.path, Query: tc.query})
		if err != nil {
			t.Errorf("%q: %v", tc.path, err)
			continue
		}
		var got map[string]string
		if err := json.Unmarshal(resp.Body, &got); err != nil {
			t.Fatalf("%q: %v: %s", tc.path, err, resp.Body)
		}
		if got["path"] != tc.path || got["query"] != tc.query || got["requestURI"] != tc.wantURI {
			t.Errorf("%q?%s reached the function as %v, want URI %q", tc.path, tc.query, got, tc.wantURI)
		}
	}
}

// An escaped slash reaches the function escaped: the request line keeps
// the %2F that RawPath carries, and Path is decoded as before.
func TestHTTPRawPath(t *testing.T) {
	d := newDriver(t)
	m := load(t, d, "uri", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolHTTP}, httpFn(t), nil)
	in := start(t, m)
	resp := mustInvoke(t, in, &gust.Request{Method: "GET", Path: "/uri/a/b", RawPath: "/uri/a%2Fb", Query: "q=1"})
	var got map[string]string
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	if got["path"] != "/uri/a/b" || got["requestURI"] != "/uri/a%2Fb?q=1" {
		t.Fatalf("reached the function as %v, want path /uri/a/b and URI /uri/a%%2Fb?q=1", got)
	}
}
