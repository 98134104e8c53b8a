package console_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// The admin token never reaches the browser's storage, where a page a
// function serves from the same origin could read it: after signing in,
// sessionStorage and localStorage hold nothing of it, a reload asks for
// it again, and a token an older console left in sessionStorage is
// neither used nor kept. A webhook trigger is shown as one.
func TestBrowserTokenInMemoryOnly(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed (apt-get install chromium); CI must have it", chromium)
		}
		t.Fatalf("%s is missing in CI: %v", chromium, err)
	}
	code := wasmtest.Code(t, wasmtest.Hello(t))
	n, c, tok := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.SetSecret(ctx, "HOOK_KEY", []byte("a webhook signing key of some length")); err != nil {
		t.Fatal(err)
	}
	spec := gust.Spec{Runtime: gust.RuntimeWasm, Triggers: []gust.Trigger{
		{Webhook: &gust.WebhookTrigger{Path: "/hooks/hooked", Secret: "HOOK_KEY", Scheme: gust.WebhookGitHub}},
		{Cron: "@every 1h"},
	}}
	if _, err := c.Deploy(ctx, "hooked", spec, "hello.wasm", bytes.NewReader(code)); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	bctx := browser(t, ctx)
	problems := watchConsole(t, bctx)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) bool {
		t.Helper()
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return ok
	}

	do("open the console", chromedp.Navigate(n.URL()+"/console/"), chromedp.WaitVisible(chromedp.ID("token")))
	// What an older console stored is not a way in, and is removed.
	do("plant an old console's token", chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("gust.token", `+jsString(tok)+`)`))
	do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("token")))
	if !eval(`sessionStorage.getItem("gust.token") === null`) {
		t.Fatal("the old console's token was kept in sessionStorage")
	}
	if note, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.ID("token-note"))); err != nil || !strings.Contains(note, "reloading the page asks for it again") {
		t.Fatalf("sign-in note %q, %v", note, err)
	}

	do("sign in",
		chromedp.SetValue(chromedp.ID("token"), tok),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(`#functions a[href="#/functions/hooked"]`)))
	if _, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](`document.querySelector("#functions tbody")?.textContent.includes("webhook /hooks/hooked (github)")`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		row, _ := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS("#functions tbody")))
		t.Fatalf("the webhook trigger in the list: %v (row %q)", err, row)
	}
	stored := `(() => { let s = ""; for (const st of [sessionStorage, localStorage]) for (let i = 0; i < st.length; i++) s += st.key(i) + "=" + st.getItem(st.key(i)) + ";"; return s; })()`
	if got, err := chromedp.Run(bctx, chromedp.Evaluate[string](stored)); err != nil || strings.Contains(got, tok) || got != "" {
		t.Fatalf("browser storage after sign-in: %q, %v", got, err)
	}
	do("reload signed in", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("token")))
	problems.check(t)
}
