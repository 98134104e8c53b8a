package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// What a function returns is data gust must survive: none of these may
// panic (a panic on the pool's goroutines would take the node down), and
// each is EFUNCTION naming the problem.
func TestMapResponseOddValues(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{`{"statusCode": null, "body": "x"}`, "statusCode is null"},
		{`{"statusCode": null}`, "statusCode is null"},
		{`{"v": NaN}`, "not JSON: invalid character 'N'"},
		{``, "not JSON"},
		{`{"statusCode": "200"}`, "malformed proxy response"},
		{`{"statusCode": 200.5}`, "malformed proxy response"},
		{`{"statusCode": 200, "body": 5}`, "malformed proxy response"},
		{`{"statusCode": 200, "headers": {"a": 1}}`, "malformed proxy response"},
		{`{"statusCode": 200, "multiValueHeaders": {"a": [1]}}`, "malformed proxy response"},
		{`{"statusCode": 200, "cookies": [{}]}`, "malformed proxy response"},
		{`{"statusCode": 99}`, "invalid statusCode 99"},
		{`{"statusCode": 200, "isBase64Encoded": true, "body": "%%"}`, "not base64"},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panicked: %v", tc.out, r)
				}
			}()
			resp, err := mapResponse([]byte(tc.out))
			if gust.ErrorCode(err) != gust.EFUNCTION || !strings.Contains(gust.ErrorMessage(err), tc.want) {
				t.Errorf("%s: %+v, %v; want EFUNCTION %q", tc.out, resp, err, tc.want)
			}
		}()
	}
	// Nulls where a value may be left out are as if left out.
	resp, err := mapResponse([]byte(`{"statusCode": 204, "headers": {"a": null, "b": "1"}, "multiValueHeaders": {"c": null}, "cookies": null, "body": null}`))
	if err != nil || resp.Status != 204 || resp.Header.Get("B") != "1" || len(resp.Body) != 0 {
		t.Errorf("nulls: %+v %v", resp, err)
	}
	// Framing is gust's: a Content-Length that disagrees with the body
	// must not reach the client.
	resp, err = mapResponse([]byte(`{"statusCode": 200, "headers": {"Content-Length": "2", "Transfer-Encoding": "chunked"}, "body": "hello"}`))
	if err != nil || resp.Header.Get("Content-Length") != "" || resp.Header.Get("Transfer-Encoding") != "" || string(resp.Body) != "hello" {
		t.Errorf("framing headers: %+v %v", resp, err)
	}
}

// A handler returning a value gust cannot map is the call's failure (502,
// naming the problem), not the process's: the runtime is healthy and the
// next call reuses it. A Node handler returning what JSON cannot hold (a
// function) answers null, not an empty body.
func TestOddReturnsKeepInstance(t *testing.T) {
	d := newDriver(t)
	t.Run("python3", func(t *testing.T) {
		requireInterpreter(t, d, gust.RuntimePython3)
		src := "def h(e, c):\n" +
			"    p = e['rawPath']\n" +
			"    if p == '/nan':\n        return {'v': float('nan')}\n" +
			"    if p == '/null':\n        return {'statusCode': None, 'body': 'x'}\n" +
			"    return {'statusCode': 200, 'body': 'ok'}\n"
		m := load(t, d, "odd-py", gust.Spec{Runtime: gust.RuntimePython3, Handler: "app.h"}, makeZip(t, zipEntry{name: "app.py", data: []byte(src)}), nil)
		in := start(t, m)
		pid := in.(*lambdaInstance).PID()
		for _, tc := range []struct{ path, want string }{
			{"/nan", "not JSON: invalid character 'N'"},
			{"/null", "statusCode is null"},
		} {
			_, err := invoke(t, in, 20*time.Second, &gust.Request{Path: tc.path})
			wantCode(t, err, gust.EFUNCTION)
			if !errors.Is(err, gust.ErrInstanceHealthy) || !strings.Contains(gust.ErrorMessage(err), tc.want) {
				t.Errorf("%s: %v; want a healthy instance and %q", tc.path, err, tc.want)
			}
			resp := mustInvoke(t, in, &gust.Request{Path: "/ok"})
			if resp.Status != 200 || string(resp.Body) != "ok" {
				t.Errorf("after %s: %d %s", tc.path, resp.Status, resp.Body)
			}
			if got := in.(*lambdaInstance).PID(); got != pid {
				t.Errorf("after %s the process changed: %d, was %d", tc.path, got, pid)
			}
		}
	})
	t.Run("nodejs", func(t *testing.T) {
		requireInterpreter(t, d, gust.RuntimeNodejs)
		src := "exports.h = async (e) => e.rawPath === '/fn' ? (() => 1) : e.rawPath === '/sym' ? Symbol('s') : 'ok';"
		m := load(t, d, "odd-node", gust.Spec{Runtime: gust.RuntimeNodejs, Handler: "app.h"}, makeZip(t, zipEntry{name: "app.js", data: []byte(src)}), nil)
		in := start(t, m)
		for _, path := range []string{"/fn", "/sym"} {
			resp := mustInvoke(t, in, &gust.Request{Path: path})
			if resp.Status != 200 || string(resp.Body) != "null" {
				t.Errorf("%s: %d %q, want 200 null", path, resp.Status, resp.Body)
			}
		}
		if resp := mustInvoke(t, in, &gust.Request{Path: "/"}); string(resp.Body) != `"ok"` {
			t.Errorf("after: %q", resp.Body)
		}
	})
}

// An event taken by a /next whose connection is gone is offered again:
// the runtime's next /next gets it, and the call does not wait for its
// timeout.
func TestRuntimeAPIRedeliversLostEvent(t *testing.T) {
	a := newRuntimeAPI("redeliver", 1<<20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var first net.Conn
	a.taken = func(r *http.Request) {
		a.taken = nil // once (the handler runs alone: one /next is waiting)
		first.Close()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Error("the request's context did not end when its connection closed")
		}
	}
	a.serve(ln)
	defer a.close()
	addr := ln.Addr().String()

	first, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(first, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", apiNext)
	<-a.ready

	exited := make(chan struct{})
	ev := newEvent("ev-1", []byte(`{"n":1}`), time.Now().Add(time.Minute), "trace")
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var err error
		res, end := a.deliver(ctx, ev, exited)
		if end != delivered {
			err = fmt.Errorf("delivery ended %d", end)
		}
		if err == nil && string(res.body) != `"done"` {
			err = fmt.Errorf("result %q", res.body)
		}
		got <- err
	}()

	// The runtime reconnects and asks again: it gets the same event.
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + addr + apiNext)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id"); id != "ev-1" || string(body) != `{"n":1}` {
		t.Fatalf("second next: id %q body %q", id, body)
	}
	post, err := client.Post("http://"+addr+"/2018-06-01/runtime/invocation/ev-1/response", "application/json", strings.NewReader(`"done"`))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// The first connection got nothing.
	_ = first.SetReadDeadline(time.Now().Add(time.Second))
	if line, _ := bufio.NewReader(first).ReadString('\n'); line != "" {
		t.Errorf("the closed connection read %q", line)
	}
}
