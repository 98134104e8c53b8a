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

// A stripe signature replayed with its hex in capitals is the same
// signature: it answers the first invocation's id and runs nothing new.
func TestStripeReplayUpperCase(t *testing.T) {
	key := []byte("k")
	body := []byte("payload")
	now := time.Unix(1_700_000_000, 0)
	ts := fmt.Sprint(now.Unix())
	v1 := SignHMACSHA256(key, []byte(ts+"."+string(body)))
	hook := gust.WebhookTrigger{Scheme: gust.WebhookStripe}
	lower, err := verifySignature(hook, http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + v1}}, body, key, now)
	if err != nil {
		t.Fatal(err)
	}
	upper, err := verifySignature(hook, http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + strings.ToUpper(v1)}}, body, key, now)
	if err != nil {
		t.Fatal(err)
	}
	if lower != upper {
		t.Fatalf("replay keys %q and %q differ for one signature", lower, upper)
	}

	h := newHarness(t, "", nil)
	ctx := context.Background()
	if err := h.sec.Set(ctx, "STRIPE_KEY", key); err != nil {
		t.Fatal(err)
	}
	h.deploy("pay", gust.Spec{Triggers: []gust.Trigger{
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/stripe", Secret: "STRIPE_KEY", Scheme: gust.WebhookStripe}},
	}})
	h.waitHook("/hooks/stripe", true)
	ts = fmt.Sprint(time.Now().Unix())
	v1 = SignHMACSHA256(key, []byte(ts+"."+string(body)))
	id := h.accept("/hooks/stripe", body, map[string]string{HeaderStripeSignature: "t=" + ts + ",v1=" + v1})
	h.waitStatus(id, StatusSucceeded)
	if again := h.accept("/hooks/stripe", body, map[string]string{HeaderStripeSignature: "t=" + ts + ",v1=" + strings.ToUpper(v1)}); again != id {
		t.Fatalf("upper-case replay got %s, want the first invocation %s", again, id)
	}
	if n := h.cnt.triggered("webhook"); n != 1 {
		t.Fatalf("webhook ran %d times, want 1", n)
	}
}

// A stripe tolerance longer than replay keys are kept for is refused at
// deploy, naming both; the default and half the window pass.
func TestStripeToleranceOverReplayWindow(t *testing.T) {
	spec := func(tol time.Duration) gust.Spec {
		return gust.Spec{Triggers: []gust.Trigger{{Webhook: &gust.WebhookTrigger{
			Path: "/hooks/s", Secret: "K", Scheme: gust.WebhookStripe, Tolerance: gust.Duration(tol)}}}}
	}
	err := ValidateSpec(spec(20 * time.Minute))
	if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), "20m0s") || !strings.Contains(err.Error(), DefaultDedupWindow.String()) {
		t.Fatalf("tolerance 20m: %v, want EINVALID naming 20m0s and %s", err, DefaultDedupWindow)
	}
	for _, ok := range []time.Duration{0, time.Minute, DefaultDedupWindow / 2} {
		if err := ValidateSpec(spec(ok)); err != nil {
			t.Fatalf("tolerance %s: %v", ok, err)
		}
	}
	// A node whose window is shorter accepts no more than it covers: with
	// a 2m window, a 3m-old signature is refused despite a 5m tolerance.
	h := newHarness(t, "", func(c *Config) { c.DedupWindow = 2 * time.Minute })
	key, body := []byte("k"), []byte("b")
	if err := h.sec.Set(context.Background(), "K", key); err != nil {
		t.Fatal(err)
	}
	h.deploy("pay", spec(5*time.Minute))
	h.waitHook("/hooks/s", true)
	sign := func(at time.Time) map[string]string {
		ts := fmt.Sprint(at.Unix())
		return map[string]string{HeaderStripeSignature: "t=" + ts + ",v1=" + SignHMACSHA256(key, []byte(ts+"."+string(body)))}
	}
	wantErr(t, h.post("/hooks/s", body, sign(time.Now().Add(-3*time.Minute))), 401, gust.EUNAUTHORIZED)
	h.accept("/hooks/s", body, sign(time.Now().Add(-30*time.Second)))
}

// A deploy may not take a webhook path another function's live version
// has; its own paths it may keep. Two triggers of one spec on one path are
// refused too.
func TestCheckWebhookPaths(t *testing.T) {
	h := newHarness(t, "", nil)
	ctx := context.Background()
	hook := func(path string) gust.Trigger {
		return gust.Trigger{Webhook: &gust.WebhookTrigger{Path: path, Secret: "K", Scheme: gust.WebhookGitHub}}
	}
	h.deploy("zzz", gust.Spec{Triggers: []gust.Trigger{hook("/hooks/github")}})

	err := CheckWebhookPaths(ctx, h.reg, "aaa", gust.Spec{Triggers: []gust.Trigger{hook("/hooks/other"), hook("/hooks/github")}})
	if gust.ErrorCode(err) != gust.ECONFLICT || !strings.Contains(err.Error(), "zzz") || !strings.Contains(err.Error(), "/hooks/github") {
		t.Fatalf("taking zzz's path: %v, want ECONFLICT naming zzz and the path", err)
	}
	if err := CheckWebhookPaths(ctx, h.reg, "zzz", gust.Spec{Triggers: []gust.Trigger{hook("/hooks/github")}}); err != nil {
		t.Fatalf("zzz redeploying its own path: %v", err)
	}
	if err := CheckWebhookPaths(ctx, h.reg, "aaa", gust.Spec{Triggers: []gust.Trigger{hook("/hooks/other")}}); err != nil {
		t.Fatalf("a free path: %v", err)
	}
	// Once zzz's live version drops it, the path is free.
	h.deploy("zzz", gust.Spec{})
	if err := CheckWebhookPaths(ctx, h.reg, "aaa", gust.Spec{Triggers: []gust.Trigger{hook("/hooks/github")}}); err != nil {
		t.Fatalf("a path given up: %v", err)
	}

	err = ValidateSpec(gust.Spec{Triggers: []gust.Trigger{hook("/hooks/a"), hook("/hooks/a")}})
	if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), "trigger 2") {
		t.Fatalf("one path twice in a spec: %v", err)
	}
}
