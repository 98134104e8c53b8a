package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	l := summarize(d)
	want := Latencies{N: 100, Min: 1, P50: 50, P90: 90, P99: 99, P999: 100, Max: 100, Mean: 50.5}
	if l != want {
		t.Fatalf("summarize = %+v, want %+v", l, want)
	}
	if (summarize(nil) != Latencies{}) {
		t.Fatal("summarize(nil) is not zero")
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:1/", "http://localhost:8080/fn/x", "http://[::1]:80/"} {
		if err := checkLoopback(u); err != nil {
			t.Errorf("checkLoopback(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"", "http://10.0.0.1/", "http://example.com/"} {
		if err := checkLoopback(u); err == nil {
			t.Errorf("checkLoopback(%q) accepted a non-loopback URL", u)
		}
	}
}

// TestOpenLoop runs each engine's raw HTTP/1.1 client against a real
// server: every request is answered and counted by status, on reused
// connections, and a server that closes connections is followed.
func TestOpenLoop(t *testing.T) {
	for name, loop := range engines {
		t.Run(name, func(t *testing.T) { testOpenLoop(t, loop) })
	}
}

func testOpenLoop(t *testing.T, loop openLoopFunc) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("close") != "" {
			w.Header().Set("Connection", "close")
		}
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("Hello, world!\n"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	for _, tc := range []struct {
		path       string
		ok, non2xx int
		maxConns   int
	}{
		{"/", 50, 0, 2},
		{"/?close=1", 50, 0, 50},
		{"/missing", 0, 50, 2},
	} {
		conns.Store(0)
		tg, err := newTarget(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := loop(tg, 1000, 50*time.Millisecond, 2, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 50 || r.OK != tc.ok || r.Non2xx != tc.non2xx || r.Errors != 0 {
			t.Errorf("%s: sent %d ok %d non2xx %d errors %d, want 50 %d %d 0", tc.path, r.Sent, r.OK, r.Non2xx, r.Errors, tc.ok, tc.non2xx)
		}
		if n := conns.Load(); n > int64(tc.maxConns) {
			t.Errorf("%s: %d connections, want at most %d", tc.path, n, tc.maxConns)
		}
	}
}

func TestOpenLoopRefusesChunked(t *testing.T) {
	for name, loop := range engines {
		t.Run(name, func(t *testing.T) { testRefusesChunked(t, loop) })
	}
}

func testRefusesChunked(t *testing.T, loop openLoopFunc) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 10)))
		w.(http.Flusher).Flush() // forces chunked encoding
	}))
	defer srv.Close()
	tg, err := newTarget(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	r, err := loop(tg, 1000, 10*time.Millisecond, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != r.Sent || r.Sent == 0 {
		t.Fatalf("chunked answers: %d sent, %d errors; want all to fail", r.Sent, r.Errors)
	}
}

// TestOpenLoopFailures: answers slower than the timeout and a server that
// is not there both end every request as an error, and the loop returns.
func TestOpenLoopFailures(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there now
	for name, loop := range engines {
		for _, u := range []string{slow.URL, gone} {
			tg, err := newTarget(u)
			if err != nil {
				t.Fatal(err)
			}
			r, err := loop(tg, 200, 50*time.Millisecond, 2, 100*time.Millisecond)
			if err != nil {
				t.Fatalf("%s %s: %v", name, u, err)
			}
			if r.Sent != 10 || r.Errors != r.Sent || r.OK != 0 {
				t.Errorf("%s %s: sent %d ok %d errors %d; want 10 sent, all errors", name, u, r.Sent, r.OK, r.Errors)
			}
		}
		// One request, nothing else due: only its own deadline ends it.
		tg, err := newTarget(slow.URL)
		if err != nil {
			t.Fatal(err)
		}
		r, err := loop(tg, 20, 50*time.Millisecond, 1, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 1 || r.Errors != 1 {
			t.Errorf("%s: a lone slow request: sent %d errors %d; want it to time out, not wait for the answer", name, r.Sent, r.Errors)
		}
	}
}
