package async

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

func (h *harness) lastSeq() uint64 {
	h.t.Helper()
	info, err := h.a.stream.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.LastSeq
}

func (h *harness) waitHook(path string, present bool) {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("webhook %s present=%v", path, present), func() bool {
		_, ok := h.a.hooks.lookup(path)
		return ok == present
	})
}

func TestWebhook(t *testing.T) {
	h := newHarness(t, "", nil)
	ctx := context.Background()
	key := []byte("s3cret-key")
	if err := h.sec.Set(ctx, "HOOK_KEY", key); err != nil {
		t.Fatal(err)
	}
	h.deploy("hooked", gust.Spec{Triggers: []gust.Trigger{
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/github", Secret: "HOOK_KEY", Scheme: gust.WebhookGitHub}},
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/stripe", Secret: "HOOK_KEY", Scheme: gust.WebhookStripe, Tolerance: gust.Duration(time.Minute)}},
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/plain/x", Secret: "HOOK_KEY", Scheme: gust.WebhookHMACSHA256}},
	}})
	h.deploy("unset", gust.Spec{Triggers: []gust.Trigger{
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/unset", Secret: "NOT_SET", Scheme: gust.WebhookHMACSHA256}},
	}})
	h.waitHook("/hooks/github", true)
	h.waitHook("/hooks/unset", true)

	body := []byte(`{"ref":"refs/heads/main"}`)
	sig := SignHMACSHA256(key, body)

	// Refused before anything is stored: nothing published, nothing run.
	before := h.lastSeq()
	for name, hdr := range map[string]map[string]string{
		"github missing":   {},
		"github bad":       {HeaderGitHubSignature: "sha256=" + SignHMACSHA256([]byte("wrong"), body)},
		"github no prefix": {HeaderGitHubSignature: sig},
		"github not hex":   {HeaderGitHubSignature: "sha256=zz"},
	} {
		r := h.post("/hooks/github", body, hdr)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, r.status, r.body)
			continue
		}
		wantErr(t, r, 401, gust.EUNAUTHORIZED)
	}
	now := time.Now()
	stripe := func(ts time.Time, key []byte) string {
		t := fmt.Sprint(ts.Unix())
		return "t=" + t + ",v1=" + SignHMACSHA256(key, []byte(t+"."+string(body)))
	}
	wantErr(t, h.post("/hooks/stripe", body, map[string]string{HeaderStripeSignature: stripe(now.Add(-2*time.Minute), key)}), 401, gust.EUNAUTHORIZED)
	wantErr(t, h.post("/hooks/stripe", body, map[string]string{HeaderStripeSignature: stripe(now.Add(2*time.Minute), key)}), 401, gust.EUNAUTHORIZED)
	wantErr(t, h.post("/hooks/stripe", body, map[string]string{HeaderStripeSignature: stripe(now, []byte("wrong"))}), 401, gust.EUNAUTHORIZED)
	wantErr(t, h.post("/hooks/stripe", body, map[string]string{HeaderStripeSignature: "v1=" + sig}), 401, gust.EUNAUTHORIZED)
	wantErr(t, h.post("/hooks/plain/x", body, map[string]string{HeaderSignature: SignHMACSHA256(key, []byte("other body"))}), 401, gust.EUNAUTHORIZED)
	wantErr(t, h.post("/hooks/plain/x", body, nil), 401, gust.EUNAUTHORIZED)
	wantErr(t, h.post("/hooks/unset", body, map[string]string{HeaderSignature: sig}), 503, gust.EUNAVAILABLE)
	wantErr(t, h.post("/hooks/nothere", body, map[string]string{HeaderSignature: sig}), 404, gust.ENOTFOUND)
	wantErr(t, h.post("/hooks/plain", body, map[string]string{HeaderSignature: sig}), 404, gust.ENOTFOUND)
	if r := h.do(http.MethodGet, "/hooks/github"); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET = %d", r.status)
	}
	if after := h.lastSeq(); after != before {
		t.Fatalf("refused deliveries stored %d events", after-before)
	}
	if n := h.cnt.triggered("webhook"); n != 0 {
		t.Fatalf("refused deliveries ran %d times", n)
	}

	// GitHub: accepted, run as a CloudEvent with the delivery's headers.
	gh := map[string]string{HeaderGitHubSignature: "sha256=" + sig, "X-GitHub-Event": "push", HeaderGitHubDelivery: "d-1", "Content-Type": "application/json"}
	id := h.accept("/hooks/github", body, gh)
	s := h.waitStatus(id, StatusSucceeded)
	if s.Trigger != "webhook" || s.Function != "hooked" || s.Response.Body != string(body) || s.Response.Headers.Get("Echo-Ce-Type") != CETypeWebhook ||
		s.Response.Headers.Get("Echo-Ce-Source") != "/hooks/github" || s.Response.Headers.Get("Echo-Ce-Id") != id || s.Response.Headers.Get("Echo-Ce-Specversion") != "1.0" {
		t.Fatalf("github status = %+v", s)
	}
	got := h.cnt.lastHeader("webhook")
	if got.Get("X-Github-Event") != "push" || got.Get("Content-Type") != "application/json" || got.Get(HeaderGitHubDelivery) != "d-1" {
		t.Fatalf("function saw headers %v", got)
	}
	// GitHub redelivers with the same delivery id: the first invocation.
	if again := h.accept("/hooks/github", body, gh); again != id {
		t.Fatalf("redelivery got %s, want %s", again, id)
	}

	// Stripe: a signature within the tolerance, one of several v1 values.
	sh := stripe(now, key)
	id = h.accept("/hooks/stripe", body, map[string]string{HeaderStripeSignature: sh + ",v1=" + SignHMACSHA256([]byte("old"), body)})
	h.waitStatus(id, StatusSucceeded)
	// The same signed request replayed within the tolerance runs nothing new.
	if again := h.accept("/hooks/stripe", body, map[string]string{HeaderStripeSignature: sh}); again != id {
		t.Fatalf("replay got %s, want %s", again, id)
	}

	// hmac-sha256, the query kept.
	id = h.accept("/hooks/plain/x?src=ci", body, map[string]string{HeaderSignature: strings.ToUpper(sig)})
	h.waitStatus(id, StatusSucceeded)
	if n := h.cnt.triggered("webhook"); n != 3 {
		t.Fatalf("webhook invocations ran %d times, want 3", n)
	}

	// A new live version without the trigger takes the path away.
	h.deploy("hooked", gust.Spec{})
	h.waitHook("/hooks/github", false)
	wantErr(t, h.post("/hooks/github", body, gh), 404, gust.ENOTFOUND)
}

func (h *harness) do(method, path string) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return answer{status: resp.StatusCode, header: resp.Header}
}

func TestVerifySignatureTable(t *testing.T) {
	key := []byte("k")
	body := []byte("payload")
	now := time.Unix(1_700_000_000, 0)
	ts := fmt.Sprint(now.Unix())
	v1 := SignHMACSHA256(key, []byte(ts+"."+string(body)))
	cases := []struct {
		name   string
		scheme string
		header http.Header
		ok     bool
	}{
		{"github ok", gust.WebhookGitHub, http.Header{"X-Hub-Signature-256": {"sha256=" + SignHMACSHA256(key, body)}}, true},
		{"github sha1 header only", gust.WebhookGitHub, http.Header{"X-Hub-Signature": {"sha1=00"}}, false},
		{"github short", gust.WebhookGitHub, http.Header{"X-Hub-Signature-256": {"sha256=" + SignHMACSHA256(key, body)[:10]}}, false},
		{"hmac ok", gust.WebhookHMACSHA256, http.Header{"X-Signature": {SignHMACSHA256(key, body)}}, true},
		{"hmac of empty", gust.WebhookHMACSHA256, http.Header{"X-Signature": {SignHMACSHA256(key, nil)}}, false},
		{"stripe ok", gust.WebhookStripe, http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + v1}}, true},
		{"stripe spaces", gust.WebhookStripe, http.Header{"Stripe-Signature": {"t=" + ts + ", v0=ab, v1=" + v1}}, true},
		{"stripe v0 only", gust.WebhookStripe, http.Header{"Stripe-Signature": {"t=" + ts + ",v0=" + v1}}, false},
		{"stripe bad t", gust.WebhookStripe, http.Header{"Stripe-Signature": {"t=x,v1=" + v1}}, false},
		{"stripe t changed", gust.WebhookStripe, http.Header{"Stripe-Signature": {"t=" + fmt.Sprint(now.Unix()+1) + ",v1=" + v1}}, false},
	}
	for _, c := range cases {
		_, err := verifySignature(gust.WebhookTrigger{Scheme: c.scheme}, c.header, body, key, now)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && gust.ErrorCode(err) != gust.EUNAUTHORIZED {
			t.Errorf("%s: code %s", c.name, gust.ErrorCode(err))
		}
	}
	// Past the default tolerance of five minutes.
	if _, err := verifySignature(gust.WebhookTrigger{Scheme: gust.WebhookStripe}, http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + v1}}, body, key, now.Add(6*time.Minute)); err == nil {
		t.Error("stale stripe signature accepted")
	}
}
