package process

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/pool"
)

func requireInterpreter(t *testing.T, d *Driver, runtime string) {
	t.Helper()
	switch runtime {
	case gust.RuntimePython3:
		if d.cfg.Python == "" {
			t.Fatal("python3 is not installed in /usr/local/bin, /usr/bin or /bin: install the Debian package python3 (scripts/setup does)")
		}
	case gust.RuntimeNodejs:
		if d.cfg.Node == "" {
			t.Fatal("node is not installed in /usr/local/bin, /usr/bin or /bin: install the Debian package nodejs (scripts/setup does)")
		}
	}
}

// TestManagedExamples deploys the python and node examples as the CLI
// uploads a directory (ZipDir) and invokes them.
func TestManagedExamples(t *testing.T) {
	d := newDriver(t)
	for _, tc := range []struct {
		runtime, dir, handler, lang, errType string
	}{
		{gust.RuntimePython3, "../examples/python-hello", "handler.handler", "py", "ValueError"},
		{gust.RuntimeNodejs, "../examples/node-hello", "index.handler", "js", "TypeError"},
	} {
		t.Run(tc.runtime, func(t *testing.T) {
			requireInterpreter(t, d, tc.runtime)
			code, err := ZipDir(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			sink := &logSink{}
			name := tc.runtime + "-hello"
			m := load(t, d, name, gust.Spec{Runtime: tc.runtime, Handler: tc.handler, Env: map[string]string{"GREETING": "Hi"}}, code, sink)
			in := start(t, m)
			for i := 0; i < 2; i++ { // cold, then warm
				resp := mustInvoke(t, in, &gust.Request{ID: "r" + tc.lang, Method: "POST", Path: "/greet", Query: "name=gust",
					Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("hello body")})
				if resp.Status != 200 || resp.Header.Get("Set-Cookie") != "lang="+tc.lang {
					t.Fatalf("got %d %v %s", resp.Status, resp.Header, resp.Body)
				}
				var got map[string]any
				if err := json.Unmarshal(resp.Body, &got); err != nil {
					t.Fatalf("%v: %s", err, resp.Body)
				}
				if got["message"] != "Hi, gust!" || got["requestId"] != "r"+tc.lang || got["function"] != name ||
					got["method"] != "POST" || got["body"] != "hello body" {
					t.Errorf("got %v", got)
				}
				if ms, _ := got["remainingMs"].(float64); ms <= 0 || ms > 20000 {
					t.Errorf("remaining time %v", got["remainingMs"])
				}
			}
			sink.waitLog(t, "greeting gust")

			_, err = invoke(t, in, 10*time.Second, &gust.Request{ID: "fail-" + tc.lang, Path: "/fail"})
			wantCode(t, err, gust.EFUNCTION)
			if !strings.Contains(err.Error(), tc.errType+": asked to fail") {
				t.Errorf("error %q", err)
			}
			sink.waitLog(t, `"errorMessage":"asked to fail","errorType":"`+tc.errType+`","stackTrace":[`)
		})
	}
}

func TestManagedHandlers(t *testing.T) {
	d := newDriver(t)
	requireInterpreter(t, d, gust.RuntimeNodejs)
	requireInterpreter(t, d, gust.RuntimePython3)
	cases := []struct {
		name, runtime, handler, file, src, want string
	}{
		{"node callback", gust.RuntimeNodejs, "app.main", "app.js",
			"exports.main = (event, context, callback) => { setTimeout(() => callback(null, {ok: event.rawPath}), 5); };", `{"ok":"/x"}`},
		{"node commonjs sync", gust.RuntimeNodejs, "lib/h.handler", "lib/h.cjs",
			"module.exports.handler = async () => 'plain';", `"plain"`},
		{"python bare value", gust.RuntimePython3, "pkg.mod.fn", "pkg/mod.py",
			"def fn(event, context):\n    return {'path': event['rawPath'], 'remaining': context.get_remaining_time_in_millis() > 0}\n", `{"path": "/x", "remaining": true}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			entries := []zipEntry{{name: tc.file, data: []byte(tc.src)}}
			if strings.HasPrefix(tc.file, "pkg/") {
				entries = append(entries, zipEntry{name: "pkg/__init__.py"})
			}
			m := load(t, d, "h", gust.Spec{Runtime: tc.runtime, Handler: tc.handler}, makeZip(t, entries...), nil)
			in := start(t, m)
			resp := mustInvoke(t, in, &gust.Request{Path: "/x"})
			if resp.Status != 200 || string(resp.Body) != tc.want {
				t.Errorf("got %d %s, want %s", resp.Status, resp.Body, tc.want)
			}
		})
	}
	t.Run("python import error", func(t *testing.T) {
		m := load(t, d, "bad-import", gust.Spec{Runtime: gust.RuntimePython3, Handler: "handler.handler"},
			makeZip(t, zipEntry{name: "handler.py", data: []byte("import not_a_module\n")}), nil)
		_, err := m.NewInstance(t.Context())
		wantCode(t, err, gust.EFUNCTION)
		if !strings.Contains(err.Error(), "ModuleNotFoundError") {
			t.Errorf("error %q", err)
		}
	})
	t.Run("node timeout", func(t *testing.T) {
		m := load(t, d, "sleepy", gust.Spec{Runtime: gust.RuntimeNodejs, Handler: "index.handler"},
			makeZip(t, zipEntry{name: "index.js", data: []byte("exports.handler = () => new Promise(() => {});")}), nil)
		in := start(t, m)
		_, err := invoke(t, in, 300*time.Millisecond, &gust.Request{Path: "/"})
		wantCode(t, err, gust.ETIMEOUT)
	})
}

// A handler that raises leaves its process healthy, as on Lambda: its
// error wraps gust.ErrInstanceHealthy, so a pool (a real one here) keeps
// the instance warm, its memory reserved once in the budget, and the next
// call reuses the same process. Errors that break the instance (a timeout)
// still discard it.
func TestHandlerErrorKeepsInstance(t *testing.T) {
	d := newDriver(t)
	for _, tc := range []struct {
		name, runtime, handler, fail, errType string
		stack                                 bool
	}{
		{"python3", gust.RuntimePython3, "handler.handler", "/fail", "ValueError", true},
		{"nodejs", gust.RuntimeNodejs, "index.handler", "/fail", "TypeError", true},
		{"go-lambda", gust.RuntimeProcess, "", "/error", "errorString", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireInterpreter(t, d, tc.runtime)
			spec := gust.Spec{Runtime: tc.runtime, Handler: tc.handler, MemoryMB: 128}
			var code []byte
			switch tc.runtime {
			case gust.RuntimePython3, gust.RuntimeNodejs:
				dir := map[string]string{gust.RuntimePython3: "../examples/python-hello", gust.RuntimeNodejs: "../examples/node-hello"}[tc.runtime]
				var err error
				if code, err = ZipDir(dir); err != nil {
					t.Fatal(err)
				}
			default:
				spec.Protocol = gust.ProtocolLambda
				code = makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: goBuild(t, "../examples/lambda-go", ".")})
			}
			m := load(t, d, "raises", spec, code, nil)
			budget := pool.NewBudget(1024)
			p := pool.New(m, pool.Config{Function: "raises", Version: 1, MemoryMB: 128, MaxConcurrency: 1,
				Budget: budget, Interval: -1, Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := p.Drain(ctx); err != nil {
					t.Errorf("Drain: %v", err)
				}
			})
			call := func(path string, timeout time.Duration) (pid int, cold bool, err error) {
				t.Helper()
				l, err := p.Acquire(t.Context())
				if err != nil {
					t.Fatalf("Acquire: %v", err)
				}
				li := l.Instance().(*lambdaInstance)
				pid, cold = li.PID(), l.Cold()
				_, err = invoke(t, li, timeout, &gust.Request{Path: path})
				l.Release(err)
				return pid, cold, err
			}
			pid, cold, err := call(tc.fail, 10*time.Second)
			wantCode(t, err, gust.EFUNCTION)
			if !errors.Is(err, gust.ErrInstanceHealthy) {
				t.Errorf("handler error %v does not say the instance is healthy", err)
			}
			checkLambdaErrorBody(t, err, tc.errType, tc.stack)
			if !cold {
				t.Error("the first call was not a cold start")
			}
			again, cold, err := call("/greet", 10*time.Second)
			if err != nil {
				t.Fatalf("after a handler error: %v", err)
			}
			if cold || again != pid {
				t.Errorf("after a handler error the call ran in pid %d (cold %v), want the warm %d", again, cold, pid)
			}
			if s := p.Stats(); s.Instances != 1 || s.ColdStarts != 1 || s.MemoryMB != 128 {
				t.Errorf("pool stats %+v", s)
			}
			if u := budget.Stats().UsedMB; u != 128 {
				t.Errorf("budget used %d MB, want one instance's 128", u)
			}
			// A timeout is no handler error: the instance goes.
			_, _, err = call("/sleep", time.Nanosecond)
			if err == nil || errors.Is(err, gust.ErrInstanceHealthy) {
				t.Fatalf("a timed-out call returned %v", err)
			}
			third, cold, err := call("/greet", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !cold || third == pid {
				t.Errorf("after a timeout the call ran in pid %d (cold %v), want a new instance", third, cold)
			}
		})
	}
}

// checkLambdaErrorBody checks that a handler's error gives the 502 body
// both promises ask for: gust's {"error", "code"} and Lambda's
// errorMessage, errorType and stackTrace (when the runtime sent one), in
// one JSON object, built as the gateway builds it.
func checkLambdaErrorBody(t *testing.T, err error, errType string, stack bool) {
	t.Helper()
	var fe interface{ ErrorFields() map[string]any }
	if !errors.As(err, &fe) {
		t.Fatalf("error %v carries no Lambda error fields", err)
	}
	body := fe.ErrorFields()
	body["error"], body["code"] = gust.ErrorMessage(err), gust.ErrorCode(err)
	b, mErr := json.Marshal(body)
	if mErr != nil {
		t.Fatal(mErr)
	}
	var got struct {
		Error        string          `json:"error"`
		Code         string          `json:"code"`
		ErrorMessage string          `json:"errorMessage"`
		ErrorType    string          `json:"errorType"`
		StackTrace   json.RawMessage `json:"stackTrace"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Code != gust.EFUNCTION || got.Error != "function error: "+errType+": asked to fail" ||
		got.ErrorMessage != "asked to fail" || got.ErrorType != errType {
		t.Errorf("error body %s", b)
	}
	var lines []string
	if stack && (json.Unmarshal(got.StackTrace, &lines) != nil || len(lines) == 0) {
		t.Errorf("error body %s: want a stackTrace of lines", b)
	}
	if !stack && got.StackTrace != nil {
		t.Errorf("error body %s: the runtime sent no stackTrace", b)
	}
}
