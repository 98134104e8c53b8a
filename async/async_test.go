package async

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/httperr"
)

func retries(n int) *int { return &n }

func wantErr(t *testing.T, r answer, status int, code string) {
	t.Helper()
	var b httperr.Body
	if r.status != status || json.Unmarshal(r.body, &b) != nil || b.Code != code {
		t.Fatalf("got %d %s, want %d with code %s", r.status, r.body, status, code)
	}
}

func TestAcceptRunsAndReports(t *testing.T) {
	h := newHarness(t, "", nil)
	h.deploy("echo", gust.Spec{MaxBodyBytes: 100})

	id := h.accept("/async/echo/some/path?x=1", []byte("hello"), map[string]string{"X-Custom": "yes"})
	s := h.waitStatus(id, StatusSucceeded)
	if s.Function != "echo" || s.Version != 1 || s.Attempts != 1 || s.Trigger != "async" || s.StartedAt == nil || s.FinishedAt == nil {
		t.Fatalf("status = %+v", s)
	}
	if s.Response == nil || s.Response.Status != 200 || s.Response.Body != "hello" || s.Response.Encoding != "text" ||
		s.Response.Headers.Get("Echo-X-Gust-Attempt") != "1" {
		t.Fatalf("response = %+v", s.Response)
	}
	if h.cnt.count(id) != 1 {
		t.Fatalf("ran %d times", h.cnt.count(id))
	}

	// Errors of the gateway's kinds.
	wantErr(t, h.post("/async/nope", nil, nil), 404, gust.ENOTFOUND)
	wantErr(t, h.post("/async/Bad_Name", nil, nil), 404, gust.ENOTFOUND)
	wantErr(t, h.post("/async/echo", []byte(strings.Repeat("x", 101)), nil), 413, gust.ETOOLARGE)
	wantErr(t, h.post("/async/echo", nil, map[string]string{HeaderCallbackURL: "ftp://127.0.0.1/x"}), 400, gust.EINVALID)
	wantErr(t, h.post("/async/echo", nil, map[string]string{HeaderCallbackURL: "/relative"}), 400, gust.EINVALID)
	if _, err := h.c.Invocation(context.Background(), "0123456789abcdef"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := h.c.Invocation(context.Background(), "../../etc"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("bad id: %v", err)
	}

	// A 5xx answer is a response, not a failure: no retry.
	id = h.accept("/async/echo?status=503", []byte("down"), nil)
	s = h.waitStatus(id, StatusSucceeded)
	if s.Attempts != 1 || s.Response.Status != 503 {
		t.Fatalf("5xx: %+v", s)
	}

	// The client's InvokeAsync.
	id, err := h.c.InvokeAsync(context.Background(), "echo@1", "/p?q=1", strings.NewReader("via client"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := h.waitStatus(id, StatusSucceeded); s.Response.Body != "via client" {
		t.Fatalf("client async: %+v", s.Response)
	}
}

func TestResponseTruncated(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.MaxResponseBytes = 10 })
	h.deploy("echo", gust.Spec{})
	id := h.accept("/async/echo", []byte(strings.Repeat("é", 20)), nil)
	s := h.waitStatus(id, StatusSucceeded)
	if !s.Response.Truncated || s.Response.Size != 40 || len(s.Response.Body) != 10 || s.Response.Encoding != "text" {
		t.Fatalf("response = %+v", s.Response)
	}
	id = h.accept("/async/echo", []byte{0xff, 0xfe, 0x00}, nil)
	s = h.waitStatus(id, StatusSucceeded)
	if s.Response.Encoding != "base64" || s.Response.Body != "//4A" {
		t.Fatalf("binary response = %+v", s.Response)
	}
}

func TestRetriesThenSuccess(t *testing.T) {
	h := newHarness(t, "", nil)
	h.deploy("flaky", gust.Spec{Retries: retries(2), RetryBackoff: gust.Duration(50 * time.Millisecond)})
	id := h.accept("/async/flaky", []byte("fail:2"), nil)
	s := h.waitStatus(id, StatusSucceeded)
	if s.Attempts != 3 || s.Response.Headers.Get("Echo-X-Gust-Attempt") != "3" || s.Error != "" {
		t.Fatalf("status = %+v", s)
	}
	if n := h.cnt.count(id); n != 3 {
		t.Fatalf("ran %d times, want 3", n)
	}
}

func TestDeadLetterRedrivePurge(t *testing.T) {
	h := newHarness(t, "", nil)
	ctx := context.Background()
	h.deploy("broken", gust.Spec{Retries: retries(1), RetryBackoff: gust.Duration(20 * time.Millisecond), Env: map[string]string{"BROKEN": "1"}})
	id1 := h.accept("/async/broken/a", []byte("one"), nil)
	id2 := h.accept("/async/broken/b", []byte("two"), nil)
	for _, id := range []string{id1, id2} {
		s := h.waitStatus(id, StatusDeadLettered)
		if s.Attempts != 2 || s.Code != gust.EFUNCTION || s.Error == "" {
			t.Fatalf("dead status = %+v", s)
		}
	}
	dl, err := h.c.DeadLetters(ctx, "broken")
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) == 2 && dl[0].ID == id2 {
		dl[0], dl[1] = dl[1], dl[0] // in the order they died
	}
	if len(dl) != 2 || dl[0].ID != id1 || dl[1].ID != id2 || dl[0].Attempts != 2 || dl[0].Code != gust.EFUNCTION ||
		dl[0].Error == "" || dl[0].Path != "/a" || dl[0].BodySize != 3 || dl[0].DeadAt.IsZero() {
		t.Fatalf("dead letters = %+v", dl)
	}
	if n := h.cnt.count(id1); n != 2 {
		t.Fatalf("ran %d times, want 2", n)
	}

	// Fix the function, then redrive one dead letter.
	h.deploy("broken", gust.Spec{Retries: retries(1)})
	res, err := h.c.Redrive(ctx, "broken", []string{id1, "nosuchid"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Redriven) != 1 || res.Redriven[0] != id1 || len(res.Missing) != 1 || res.Missing[0] != "nosuchid" {
		t.Fatalf("redrive = %+v", res)
	}
	s := h.waitStatus(id1, StatusSucceeded)
	if s.Version != 2 || s.Attempts != 1 || s.Response.Body != "one" {
		t.Fatalf("redriven status = %+v", s)
	}
	dl, _ = h.c.DeadLetters(ctx, "broken")
	if len(dl) != 1 || dl[0].ID != id2 {
		t.Fatalf("after redrive = %+v", dl)
	}

	n, err := h.c.PurgeDeadLetters(ctx, "broken")
	if err != nil || n != 1 {
		t.Fatalf("purge = %d, %v", n, err)
	}
	if dl, _ := h.c.DeadLetters(ctx, "broken"); len(dl) != 0 {
		t.Fatalf("after purge = %+v", dl)
	}
	if res, err := h.c.Redrive(ctx, "broken", nil); err != nil || len(res.Redriven) != 0 {
		t.Fatalf("redrive of nothing = %+v, %v", res, err)
	}
}

func TestMaxEventAge(t *testing.T) {
	h := newHarness(t, "", nil)
	h.deploy("old", gust.Spec{Retries: retries(50), RetryBackoff: gust.Duration(100 * time.Millisecond), MaxEventAge: gust.Duration(300 * time.Millisecond)})
	id := h.accept("/async/old", []byte("fail:always"), nil)
	s := h.waitStatus(id, StatusDeadLettered)
	if s.Attempts >= 50 || s.Attempts < 1 {
		t.Fatalf("status = %+v", s)
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t, "", nil)
	ctx := context.Background()
	h.deploy("held", gust.Spec{})
	h.cnt.setHold("held", true)
	id := h.accept("/async/held", []byte("x"), nil)
	// With a plain Invoker a held event is "running" for the moment a
	// worker tries it, and only queued ones can be canceled: retry over
	// those moments. (A StartInvoker's never are.)
	var s *client.InvocationStatus
	var err error
	eventually(t, "the cancel", func() bool {
		s, err = h.c.CancelInvocation(ctx, id)
		return gust.ErrorCode(err) != gust.ECONFLICT
	})
	if err != nil || s.Status != StatusCanceled {
		t.Fatalf("cancel = %+v, %v", s, err)
	}
	if _, err := h.c.CancelInvocation(ctx, id); gust.ErrorCode(err) != gust.ECONFLICT {
		t.Fatalf("second cancel: %v", err)
	}
	h.cnt.setHold("held", false)
	// The canceled event leaves the queue without running.
	eventually(t, "the queue to empty", func() bool {
		ci, err := h.a.js.Consumer(ctx, StreamAsync, ConsumerWorkers)
		if err != nil {
			return false
		}
		info, err := ci.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if n := h.cnt.count(id); n != 0 {
		t.Fatalf("canceled invocation ran %d times", n)
	}
	if s, _ := h.c.Invocation(ctx, id); s.Status != StatusCanceled {
		t.Fatalf("status after = %+v", s)
	}

	id = h.accept("/async/held", nil, nil)
	h.waitStatus(id, StatusSucceeded)
	if _, err := h.c.CancelInvocation(ctx, id); gust.ErrorCode(err) != gust.ECONFLICT {
		t.Fatalf("cancel of finished: %v", err)
	}
	if _, err := h.c.CancelInvocation(ctx, "feedfacefeedface"); gust.ErrorCode(err) != gust.ENOTFOUND {
		t.Fatalf("cancel of unknown: %v", err)
	}
}

func TestCallback(t *testing.T) {
	var mu sync.Mutex
	var got []Status
	calls := 0
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		var s Status
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &s); err == nil && r.Header.Get(HeaderInvocationID) == s.ID {
			got = append(got, s)
		}
	}))
	defer cb.Close()
	h := newHarness(t, "", nil)
	h.deploy("echo", gust.Spec{})
	id := h.accept("/async/echo", []byte("cb"), map[string]string{HeaderCallbackURL: cb.URL + "/done"})
	h.waitStatus(id, StatusSucceeded)
	eventually(t, "the callback", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0].ID != id || got[0].Status != StatusSucceeded || got[0].Response.Body != "cb" || calls != 2 {
		t.Fatalf("callback got %+v after %d calls", got, calls)
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, "", nil)
	h.deploy("echo", gust.Spec{})
	hdr := map[string]string{HeaderIdempotencyKey: "order-42"}
	ids := make([]string, 6)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.post("/async/echo", []byte("once"), hdr)
			if r.status == http.StatusAccepted {
				ids[i] = r.header.Get(HeaderInvocationID)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("ids = %v, want one id", ids)
		}
	}
	h.waitStatus(ids[0], StatusSucceeded)
	if again := h.accept("/async/echo", []byte("once"), hdr); again != ids[0] {
		t.Fatalf("after completion: id %s, want %s", again, ids[0])
	}
	if n := h.cnt.count(ids[0]); n != 1 {
		t.Fatalf("ran %d times", n)
	}
	if other := h.accept("/async/echo", nil, map[string]string{HeaderIdempotencyKey: "order-43"}); other == ids[0] {
		t.Fatal("another key got the same id")
	}
}

// Throttling is not failure: with one instance and a slow function, a
// burst of async events all succeed on their first attempt.
func TestThrottledWaits(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.Workers = 6 })
	h.deploy("narrow", gust.Spec{MaxConcurrency: 1, QueueTimeout: gust.Duration(20 * time.Millisecond), Retries: retries(0)})
	var ids []string
	for range 12 {
		ids = append(ids, h.accept("/async/narrow?sleep=60", nil, nil))
	}
	for _, id := range ids {
		s := h.waitStatus(id, StatusSucceeded)
		if s.Attempts != 1 {
			t.Fatalf("throttled event counted attempts: %+v", s)
		}
	}
}

// An event answered 202 survives a restart of everything on the same data
// dir and then runs.
func TestDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	h.deploy("echo", gust.Spec{})
	// Held: the workers take the event and put it back, so it cannot run
	// before the restart.
	h.cnt.setHold("echo", true)
	id := h.accept("/async/echo", []byte("survivor"), nil)
	h.close()

	h2 := newHarness(t, dir, nil)
	s := h2.waitStatus(id, StatusSucceeded)
	if s.Response.Body != "survivor" {
		t.Fatalf("after restart: %+v", s)
	}
}

func TestValidateSpec(t *testing.T) {
	good := []gust.Trigger{
		{Cron: "*/5 * * * *"},
		{Cron: "@every 30s"},
		{Cron: "@hourly", Timezone: "Europe/Paris", CatchUp: gust.Duration(time.Hour)},
		{Subject: "orders.created"},
		{Subject: "orders.*.eu", MaxConcurrency: 4},
		{Stream: "ORDERS", Filter: "orders.>", BatchSize: 10, MaxDeliveries: 3},
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/github", Secret: "GH_SECRET", Scheme: "github"}},
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/pay/stripe.v1", Secret: "S", Scheme: "stripe", Tolerance: gust.Duration(time.Minute)}},
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/a", Secret: "S", Scheme: "hmac-sha256"}},
	}
	if err := ValidateSpec(gust.Spec{Triggers: good}); err != nil {
		t.Fatal(err)
	}
	bad := map[string]gust.Trigger{
		"five fields":   {Cron: "* * *"},
		"timezone":      {Cron: "@daily", Timezone: "Mars/Olympus"},
		"short every":   {Cron: "@every 10ms"},
		"tz prefix":     {Cron: "CRON_TZ=UTC * * * * *"},
		"none":          {},
		"two":           {Cron: "@daily", Subject: "a"},
		"gust subject":  {Subject: "gust.async.x"},
		"system":        {Subject: "$JS.API.>"},
		"wildcard":      {Subject: ">"},
		"empty token":   {Subject: "a..b"},
		"space":         {Subject: "a b"},
		"stream name":   {Stream: "A.B"},
		"gust stream":   {Stream: "GUST_ASYNC"},
		"kv stream":     {Stream: "KV_gust_registry"},
		"filter":        {Stream: "ORDERS", Filter: "gust.>"},
		"negative":      {Stream: "ORDERS", BatchSize: -1},
		"tz on subject": {Subject: "a", Timezone: "UTC"},
		"hook and cron": {Cron: "@daily", Webhook: &gust.WebhookTrigger{Path: "/hooks/a", Secret: "S", Scheme: "github"}},
		"hook prefix":   {Webhook: &gust.WebhookTrigger{Path: "/fn/a", Secret: "S", Scheme: "github"}},
		"hook bare":     {Webhook: &gust.WebhookTrigger{Path: "/hooks/", Secret: "S", Scheme: "github"}},
		"hook dotdot":   {Webhook: &gust.WebhookTrigger{Path: "/hooks/a/../b", Secret: "S", Scheme: "github"}},
		"hook slash":    {Webhook: &gust.WebhookTrigger{Path: "/hooks/a/", Secret: "S", Scheme: "github"}},
		"hook secret":   {Webhook: &gust.WebhookTrigger{Path: "/hooks/a", Scheme: "github"}},
		"hook bad name": {Webhook: &gust.WebhookTrigger{Path: "/hooks/a", Secret: "1X", Scheme: "github"}},
		"hook scheme":   {Webhook: &gust.WebhookTrigger{Path: "/hooks/a", Secret: "S", Scheme: "sha1"}},
		"hook tol":      {Webhook: &gust.WebhookTrigger{Path: "/hooks/a", Secret: "S", Scheme: "github", Tolerance: gust.Duration(time.Minute)}},
		"hook batch":    {BatchSize: 2, Webhook: &gust.WebhookTrigger{Path: "/hooks/a", Secret: "S", Scheme: "github"}},
	}
	for name, tr := range bad {
		err := ValidateSpec(gust.Spec{Triggers: []gust.Trigger{{Cron: "@daily"}, tr}})
		if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), "trigger 2") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Callbacks go only to public addresses unless the node allows others: an
// IP literal that is not public is refused at accept (400, nothing
// stored), and a name resolving to one is refused when the callback
// connects.
func TestCallbackPrivateAddressRefused(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.CallbackAllowPrivate = false })
	h.deploy("echo", gust.Spec{})
	for _, u := range []string{"http://127.0.0.1:9/x", "http://[::1]/x", "http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data", "http://192.168.0.1/x", "http://100.64.0.1/x", "http://0.0.0.0/x", "http://[::ffff:127.0.0.1]/x"} {
		r := h.post("/async/echo", nil, map[string]string{HeaderCallbackURL: u})
		wantErr(t, r, 400, gust.EINVALID)
		if !strings.Contains(string(r.body), "callbacks go only to public addresses") {
			t.Errorf("callback %s: %s", u, r.body)
		}
	}
	if n := h.streamMsgs(); n != 0 {
		t.Fatalf("%d events stored by refused accepts", n)
	}

	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer cb.Close()
	port := cb.URL[strings.LastIndex(cb.URL, ":")+1:]
	_, err := newCallbackClient(false).Post("http://localhost:"+port+"/done", "application/json", nil)
	if err == nil || !strings.Contains(err.Error(), "a loopback address") {
		t.Fatalf("callback to localhost: %v, want it refused as a loopback address", err)
	}
	resp, err := newCallbackClient(true).Post(cb.URL+"/done", "application/json", nil)
	if err != nil {
		t.Fatalf("callback to 127.0.0.1 allowed: %v", err)
	}
	resp.Body.Close()
	for _, ip := range []string{"8.8.8.8", "2001:4860:4860::8888", "1.1.1.1", "64:ff9b::808:808", "2002:808:808::1"} {
		if kind := nonPublic(netip.MustParseAddr(ip)); kind != "" {
			t.Errorf("%s counted as %s address", ip, kind)
		}
	}
	// IPv6 addresses that carry a private IPv4 one (NAT64, 6to4,
	// IPv4-compatible) are private too.
	for _, ip := range []string{"64:ff9b::a00:5", "64:ff9b:1::1", "2002:7f00:1::1", "::a00:5", "::ffff:10.0.0.5"} {
		if nonPublic(netip.MustParseAddr(ip)) == "" {
			t.Errorf("%s counted as public", ip)
		}
	}
}

// streamMsgs is how many events the async stream holds.
func (h *harness) streamMsgs() uint64 {
	h.t.Helper()
	info, err := h.a.stream.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}
