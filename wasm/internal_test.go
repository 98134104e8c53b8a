package wasm

import (
	"encoding/binary"
	"net/http"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
)

func TestEncodeRequest(t *testing.T) {
	req := &gust.Request{ID: "id1", Method: "GET", Path: "/p", Query: "q", Header: http.Header{"A": {"b"}}, Body: []byte("xy")}
	n, err := requestSize(req, false)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	encodeRequest(buf, req, false)
	want := "\x03\x00\x00\x00GET" + "\x02\x00\x00\x00/p" + "\x01\x00\x00\x00q" +
		"\x02\x00\x00\x00" + "\x01\x00\x00\x00A\x01\x00\x00\x00b" +
		"\x14\x00\x00\x00X-Gust-Invocation-Id\x03\x00\x00\x00id1" +
		"\x02\x00\x00\x00xy"
	if string(buf) != want {
		t.Fatalf("encoded %q\nwant    %q", buf, want)
	}

	// An id the request already carries is not added twice.
	req.Header.Set("X-Gust-Invocation-Id", "id1")
	n2, _ := requestSize(req, false)
	if n2 != n {
		t.Fatalf("size with id header %d, want %d", n2, n)
	}
}

func appendBytes(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func TestDecodeResponse(t *testing.T) {
	b := binary.LittleEndian.AppendUint32(nil, 404)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = appendBytes(appendBytes(b, "content-type"), "text/plain")
	b = appendBytes(appendBytes(b, "X-A"), "1")
	b = appendBytes(appendBytes(b, "x-a"), "2")
	b = appendBytes(b, "gone")
	resp, err := decodeResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 404 || string(resp.Body) != "gone" || resp.Header.Get("Content-Type") != "text/plain" || len(resp.Header["X-A"]) != 2 {
		t.Fatalf("%+v", resp)
	}
	if got := resp.Header["X-A"]; got[0] != "1" || got[1] != "2" {
		t.Fatalf("X-A = %q, want [1 2] in order", got)
	}
	keep := append([]byte(nil), b...)
	for i := range b {
		b[i] = 'X'
	}
	if string(resp.Body) != "gone" {
		t.Fatal("body aliases guest memory")
	}
	if resp.Header.Get("Content-Type") != "text/plain" || resp.Header["X-A"][1] != "2" {
		t.Fatalf("header aliases guest memory: %v", resp.Header)
	}
	b = keep

	for i := 0; i < len(b); i++ {
		if _, err := decodeResponse(b[:i]); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
	if _, err := decodeResponse(append(b, 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
	bad := binary.LittleEndian.AppendUint32(nil, 42)
	bad = binary.LittleEndian.AppendUint32(bad, 0)
	bad = appendBytes(bad, "")
	if _, err := decodeResponse(bad); err == nil || !strings.Contains(err.Error(), "invalid status 42") {
		t.Fatalf("status 42: %v", err)
	}
}

func TestParseCGI(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		status int
		header http.Header
		body   string
		err    string
	}{
		{"plain", "Content-Type: text/plain\n\nhi\n", 200, http.Header{"Content-Type": {"text/plain"}}, "hi\n", ""},
		{"crlf and status", "Status: 404 Not Found\r\nX-A: 1\r\nx-a: 2\r\n\r\nnope", 404, http.Header{"X-A": {"1", "2"}}, "nope", ""},
		{"location means 302", "Location: /x\n\n", 302, http.Header{"Location": {"/x"}}, "", ""},
		{"location with status", "Status: 301\nLocation: /x\n\n", 301, http.Header{"Location": {"/x"}}, "", ""},
		{"no headers", "\nbody", 200, http.Header{}, "body", ""},
		{"empty", "", 0, nil, "", "no output"},
		{"no blank line", "Content-Type: text/plain\nhi", 0, nil, "", "no blank line after the headers"},
		{"no colon", "just text\n\n", 0, nil, "", `bad header line "just text"`},
		{"bad status", "Status: abc\n\n", 0, nil, "", `bad Status header "abc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := parseCGI([]byte(tt.out))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.status || string(resp.Body) != tt.body || len(resp.Header) != len(tt.header) {
				t.Fatalf("got %d %v %q", resp.Status, resp.Header, resp.Body)
			}
			for k, v := range tt.header {
				if strings.Join(resp.Header[k], ",") != strings.Join(v, ",") {
					t.Fatalf("header %s = %q, want %q", k, resp.Header[k], v)
				}
			}
		})
	}
}

func TestCGIEnv(t *testing.T) {
	env := cgiEnv("fn", &gust.Request{
		ID: "i", Method: "PUT", Path: "/p", Query: "a=1",
		Header: http.Header{"Content-Type": {"text/plain"}, "X-Forwarded-For": {"1.2.3.4", "5.6.7.8"}},
		Body:   []byte("abc"),
	})
	got := map[string]string{}
	for i := 0; i+1 < len(env); i += 2 {
		got[env[i]] = env[i+1]
	}
	for k, want := range map[string]string{
		"REQUEST_METHOD": "PUT", "PATH_INFO": "/p", "QUERY_STRING": "a=1", "CONTENT_TYPE": "text/plain",
		"CONTENT_LENGTH": "3", "SCRIPT_NAME": "/fn/fn", "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
		"X_GUST_INVOCATION_ID": "i", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 5.6.7.8", "HTTP_CONTENT_TYPE": "text/plain",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
}

func TestLogWriterLines(t *testing.T) {
	var got []string
	sink := sinkFunc(func(id, stream string, p []byte) { got = append(got, id+"|"+string(p)) })
	w := newLogWriter(&module{logs: sink, function: "fn", version: 1}, "stderr", true)
	w.begin("a")
	w.Write([]byte("par"))
	w.Write([]byte("tial\nsecond"))
	w.Write([]byte(" line\nthird\nfour"))
	w.flush()
	w.begin("b")
	w.Write([]byte("panic: boom\n\ngoroutine 1\n"))
	want := []string{"a|partial\n", "a|second line\nthird\n", "a|four", "b|panic: boom\n\ngoroutine 1\n"}
	if strings.Join(got, "#") != strings.Join(want, "#") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if w.crashLine() != "panic: boom" {
		t.Fatalf("crash line %q", w.crashLine())
	}
}

type sinkFunc func(id, stream string, p []byte)

func (f sinkFunc) FunctionLog(_ string, _ int, id, stream string, p []byte) { f(id, stream, p) }

// ABI version 2 puts the raw path after the path; version 1 leaves it out.
func TestEncodeRequestV2(t *testing.T) {
	req := &gust.Request{Method: "GET", Path: "/a/b", RawPath: "/a%2Fb", Query: "q", Body: []byte("xy")}
	n, err := requestSize(req, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	encodeRequest(buf, req, true)
	want := "\x03\x00\x00\x00GET" + "\x04\x00\x00\x00/a/b" + "\x06\x00\x00\x00/a%2Fb" + "\x01\x00\x00\x00q" +
		"\x00\x00\x00\x00" + "\x02\x00\x00\x00xy"
	if string(buf) != want {
		t.Fatalf("encoded %q\nwant    %q", buf, want)
	}
	n1, _ := requestSize(req, false)
	buf = make([]byte, n1)
	encodeRequest(buf, req, false)
	if want1 := strings.Replace(want, "\x06\x00\x00\x00/a%2Fb", "", 1); string(buf) != want1 {
		t.Fatalf("version 1 encoded %q\nwant              %q", buf, want1)
	}
}
