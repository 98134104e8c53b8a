package async

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// Every /async error answer is the JSON error shape and, as on /fn,
// carries X-Gust-Invocation-Id; a body over what fits one NATS message
// says that this, not the function's, is the limit.
func TestAcceptErrorAnswers(t *testing.T) {
	h := newHarness(t, "", nil)
	h.deploy("echo", gust.Spec{})
	h.deploy("small", gust.Spec{MaxBodyBytes: 100})

	check := func(what string, r answer, status int, code string, says ...string) {
		t.Helper()
		var b httperr.Body
		if r.status != status || json.Unmarshal(r.body, &b) != nil || b.Code != code {
			t.Fatalf("%s: got %d %s, want %d with code %s", what, r.status, r.body, status, code)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: Content-Type %q", what, ct)
		}
		if !validID(r.header.Get(HeaderInvocationID)) {
			t.Fatalf("%s: %s %q", what, HeaderInvocationID, r.header.Get(HeaderInvocationID))
		}
		for _, s := range says {
			if !strings.Contains(b.Error, s) {
				t.Fatalf("%s: error %q does not say %q", what, b.Error, s)
			}
		}
	}
	check("unknown function", h.post("/async/nosuch", nil, nil), 404, gust.ENOTFOUND)
	check("bad callback", h.post("/async/echo", nil, map[string]string{HeaderCallbackURL: "ftp://127.0.0.1/x"}), 400, gust.EINVALID)
	check("over the function's limit", h.post("/async/small", []byte(strings.Repeat("x", 101)), nil), 413, gust.ETOOLARGE,
		"function's limit of 100 bytes")

	// Served without a connection: a server that answers before reading
	// a 7 MB body may reset the connection under the client.
	big := bytes.Repeat([]byte("x"), 7_000_000)
	rec := httptest.NewRecorder()
	h.a.AcceptHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/async/echo/len", bytes.NewReader(big)))
	check("over one NATS message", answer{rec.Code, rec.Header(), rec.Body.Bytes()}, 413, gust.ETOOLARGE,
		"request body of 7000000 bytes is over the async limit of "+fmt.Sprint(h.a.maxPayload-headroom)+" bytes",
		"max_payload is "+fmt.Sprint(h.a.maxPayload)+" bytes",
		"/fn/echo takes up to the function's limit of 6291456 bytes")

	req, err := http.NewRequest(http.MethodGet, h.srv.URL+"/async/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	check("GET", answer{resp.StatusCode, resp.Header, body.Bytes()}, 405, gust.EINVALID, "POST")
	if allow := resp.Header.Get("Allow"); allow != http.MethodPost {
		t.Fatalf("GET: Allow %q", allow)
	}

	// A 202 still names the stored invocation.
	if id := h.accept("/async/echo", []byte("fine"), nil); !strings.Contains(id, "-") {
		t.Fatalf("accepted id %q", id)
	}
}
