package process

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// TestLambdaGo runs the aws-lambda-go example, built with the real library
// and lambda.Start, through the Runtime API.
func TestLambdaGo(t *testing.T) {
	bin := goBuild(t, "../examples/lambda-go", ".")
	d := newDriver(t)
	sink := &logSink{}
	m := load(t, d, "lambda-go", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolLambda, MemoryMB: 64,
		Env: map[string]string{"GREETING": "hej"}}, makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: bin}), sink)
	if m.Shape() != gust.ProtocolLambda {
		t.Errorf("shape %q", m.Shape())
	}
	in := start(t, m)

	resp := mustInvoke(t, in, &gust.Request{ID: "req-1", Method: "POST", Path: "/hello", Query: "a=1&a=2&b=x",
		Header: http.Header{"X-Test": {"yes"}, "Cookie": {"c1=v1; c2=v2"}, "Host": {"fn.example"}}, Body: []byte("text body")})
	if resp.Status != 200 {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if resp.Header.Get("X-Handled-By") != "lambda-go" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", resp.Header)
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) != 2 || c[0] != "seen=yes; Path=/" || c[1] != "flavor=oat" {
		t.Errorf("cookies %q", c)
	}
	var got map[string]any
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	want := map[string]any{
		"method": "POST", "path": "/hello", "query": "a=1&a=2&b=x", "header": "yes", "body": "text body",
		"requestId": "req-1", "arn": "arn:aws:lambda:gust:000000000000:function:lambda-go", "function": "lambda-go",
		"memory": float64(64), "greeting": "hej",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if p, _ := got["params"].(map[string]any); p["a"] != "1,2" || p["b"] != "x" {
		t.Errorf("params %v", got["params"])
	}
	if c, _ := got["cookies"].([]any); len(c) != 2 || c[0] != "c1=v1" {
		t.Errorf("cookies %v", got["cookies"])
	}

	// Warm again: a body that is not UTF-8 arrives base64-encoded, and a
	// base64 response body is decoded.
	resp = mustInvoke(t, in, &gust.Request{ID: "req-2", Method: "POST", Path: "/bin", Body: []byte{0xff, 0xfe, 0x00, 0x01}})
	if !strings.Contains(string(resp.Body), `"body":"4 bytes"`) {
		t.Errorf("binary request: %s", resp.Body)
	}
	resp = mustInvoke(t, in, &gust.Request{ID: "req-3", Path: "/binary"})
	if resp.Status != 201 || string(resp.Body) != "\xff\x00\xfe" || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("binary response %d %q %v", resp.Status, resp.Body, resp.Header)
	}

	// A returned error is Lambda's error shape: EFUNCTION, logged.
	_, err := invoke(t, in, 10*time.Second, &gust.Request{ID: "req-4", Path: "/error"})
	wantCode(t, err, gust.EFUNCTION)
	if !strings.Contains(err.Error(), "errorString: asked to fail") {
		t.Errorf("error %q", err)
	}
	sink.waitLog(t, `req-4 stderr function error: {"errorMessage":"asked to fail","errorType":"errorString"`)
}

func TestLambdaInitAndBareResponses(t *testing.T) {
	d := newDriver(t)
	t.Run("init error", func(t *testing.T) {
		script := "#!/bin/sh\nprintf '{\"errorMessage\":\"no config\",\"errorType\":\"ConfigError\"}' > /tmp/e\n" +
			"exec python3 -c 'import urllib.request,os; urllib.request.urlopen(urllib.request.Request(\"http://\"+os.environ[\"AWS_LAMBDA_RUNTIME_API\"]+\"/2018-06-01/runtime/init/error\", data=open(\"/tmp/e\",\"rb\").read(), method=\"POST\")); import time; time.sleep(30)'\n"
		m := load(t, d, "init-fails", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolLambda},
			makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: []byte(script)}), nil)
		_, err := m.NewInstance(t.Context())
		wantCode(t, err, gust.EFUNCTION)
		if !strings.Contains(err.Error(), "initialization failed: ConfigError: no config") {
			t.Errorf("error %q", err)
		}
	})
	t.Run("bare values", func(t *testing.T) {
		for _, tc := range []struct{ out, body string }{
			{`"hello"`, `"hello"`},
			{`{"message":"hi"}`, `{"message":"hi"}`},
			{`[1,2]`, `[1,2]`},
		} {
			resp, err := mapResponse([]byte(tc.out))
			if err != nil || resp.Status != 200 || string(resp.Body) != tc.body || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s: %v %+v", tc.out, err, resp)
			}
		}
		if _, err := mapResponse([]byte("not json")); gust.ErrorCode(err) != gust.EFUNCTION {
			t.Errorf("not json: %v", err)
		}
		resp, err := mapResponse([]byte(`{"statusCode":404,"multiValueHeaders":{"X-A":["1","2"]},"body":"nope"}`))
		if err != nil || resp.Status != 404 || len(resp.Header.Values("X-A")) != 2 || string(resp.Body) != "nope" {
			t.Errorf("proxy: %v %+v", err, resp)
		}
	})
	t.Run("concurrency refused", func(t *testing.T) {
		_, err := loadErr(d, "conc", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolLambda, PerInstanceConcurrency: 2},
			makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: []byte("#!/bin/sh\n")}), nil)
		wantCode(t, err, gust.EINVALID)
	})
}

// rawPath is the path as the client escaped it (a %2F stays one, a space
// is %20, as in a function URL's event); http.path is decoded.
func TestAPIGatewayEventRawPath(t *testing.T) {
	for _, tc := range []struct{ path, raw, wantRaw string }{
		{"/a/b", "/a%2Fb", "/a%2Fb"},
		{"/a b", "", "/a%20b"},
		{"/p/q", "", "/p/q"},
	} {
		b, err := newAPIGatewayEvent(&gust.Request{Method: "GET", Path: tc.path, RawPath: tc.raw}, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			RawPath        string `json:"rawPath"`
			RequestContext struct {
				HTTP struct{ Path string } `json:"http"`
			} `json:"requestContext"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.RawPath != tc.wantRaw || ev.RequestContext.HTTP.Path != tc.path {
			t.Errorf("%q %q: rawPath %q, http.path %q; want %q, %q", tc.path, tc.raw, ev.RawPath, ev.RequestContext.HTTP.Path, tc.wantRaw, tc.path)
		}
	}
}

func TestAPIGatewayEvent(t *testing.T) {
	now := time.Unix(1700000000, 0)
	b, err := newAPIGatewayEvent(&gust.Request{ID: "id1", Method: "PUT", Path: "/p/q", Query: "x=1&x=2",
		Header: http.Header{"X-Forwarded-For": {"10.0.0.9, 127.0.0.1"}, "User-Agent": {"ua"}, "Accept": {"a", "b"}, "Cookie": {"k=v"}},
		Body:   []byte("{}")}, now)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	rc := ev["requestContext"].(map[string]any)
	h := rc["http"].(map[string]any)
	hdr := ev["headers"].(map[string]any)
	checks := map[string][2]any{
		"version":    {ev["version"], "2.0"},
		"routeKey":   {ev["routeKey"], "$default"},
		"rawPath":    {ev["rawPath"], "/p/q"},
		"method":     {h["method"], "PUT"},
		"sourceIp":   {h["sourceIp"], "10.0.0.9"},
		"userAgent":  {h["userAgent"], "ua"},
		"accept":     {hdr["accept"], "a,b"},
		"requestId":  {rc["requestId"], "id1"},
		"timeEpoch":  {rc["timeEpoch"], float64(1700000000000)},
		"time":       {rc["time"], "14/Nov/2023:22:13:20 +0000"},
		"body":       {ev["body"], "{}"},
		"isBase64":   {ev["isBase64Encoded"], false},
		"cookie hdr": {hdr["cookie"], nil},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
}
