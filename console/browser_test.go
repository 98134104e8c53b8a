package console_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/node"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

const chromium = "/usr/bin/chromium"

// TestBrowser drives the console in headless Chromium against a real node:
// sign in (first with a bad token), open a deployed function, invoke it
// from the form, and see the response, its log line, its row in the
// recent invocations and the charts' count change; then the usage page.
// Screenshots go to $GUST_SCREENSHOTS if set, else to a temp dir; their
// paths are logged.
func TestBrowser(t *testing.T) {
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
	if _, err := c.Deploy(ctx, "hello", gust.Spec{Runtime: gust.RuntimeWasm}, "hello.wasm", bytes.NewReader(code)); err != nil {
		t.Fatalf("deploy: %v", err)
	}

	shots := os.Getenv("GUST_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	bctx := browser(t, ctx)
	problems := watchConsole(t, bctx)
	shot := func(name string) {
		t.Helper()
		// A full-page capture of a scrolled page draws the sticky bar
		// mid-page: scroll to the top first.
		_ = chromedp.Do(bctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, name+".png")
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			shot("failed")
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	// / sends the browser to the console, which asks for a token.
	do("open the console", chromedp.Navigate(n.URL()+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.HasSuffix(loc, "/console/") {
		t.Fatalf("/ led to %s, want /console/", loc)
	}
	do("try a bad token",
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("signin-error")))
	if msg := text("#signin-error"); !strings.Contains(msg, "not accepted") {
		t.Fatalf("bad token message = %q", msg)
	}
	shot("1-bad-token")

	do("sign in",
		chromedp.SetValue(chromedp.ID("token"), tok),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(`#functions a[href="#/functions/hello"]`)))
	poll("the live version in the list", `document.querySelector("#functions tbody tr")?.textContent.includes("live → v1")`)
	shot("2-functions")

	do("open the function",
		chromedp.Click(chromedp.CSS(`#functions a[href="#/functions/hello"]`)),
		chromedp.WaitVisible(chromedp.ID("invoke-form")))
	poll("the charts to load", `document.getElementById("stat-invocations")?.textContent === "0"`)
	poll("the log stream to open", `document.getElementById("logs-state")?.textContent === "live"`)

	do("invoke from the form",
		chromedp.SetValue(chromedp.ID("invoke-path"), "/?name=browser"),
		chromedp.Click(chromedp.ID("invoke-submit")),
		chromedp.WaitVisible(chromedp.ID("invoke-status")))
	if st := text("#invoke-status"); !strings.HasPrefix(st, "200") {
		t.Fatalf("invoke status = %q", st)
	}
	if body := text("#invoke-response"); body != "Hello, browser!" {
		t.Fatalf("invoke body = %q", body)
	}
	id := text("#invoke-id")
	if id == "" {
		t.Fatal("no invocation id shown")
	}
	// The first call is a cold start, which gust logs with the invocation id.
	poll("the invocation's log line", `[...document.querySelectorAll("#logs .log-line .inv")].some(e => e.title === `+jsString(id)+`)`)
	poll("the chart's count to change", `document.getElementById("stat-invocations")?.textContent === "1"`)
	poll("the recent invocations row", `document.getElementById("invocations")?.textContent.includes(`+jsString(id)+`)`)
	if cold := text("#stat-cold"); cold != "1" {
		t.Errorf("cold starts = %q, want 1", cold)
	}
	shot("3-function")

	do("open usage", chromedp.Click(chromedp.CSS(`nav a[data-nav="usage"]`)))
	poll("the usage row", `document.querySelector("#usage tbody")?.textContent.includes("hello")`)
	shot("4-usage")

	do("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token")))

	problems.check(t)
}

func startNode(t *testing.T) (*node.Node, *client.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		DataDir:        t.TempDir(),
		Listen:         "127.0.0.1:0",
		MemoryBudget:   1024,
		ReconcileEvery: 100 * time.Millisecond,
		WasmCacheDir:   wasmtest.CacheDir(t),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	b, err := os.ReadFile(n.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(b))
	return n, client.New(n.URL(), tok), tok
}

// browser starts the system Chromium, headless, with a fresh profile.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1360, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		// Chromium's helpers may still write to the profile for a moment
		// after it exits; t.TempDir's removal must not fail on that.
		for i := 0; i < 50; i++ {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// Start the browser now, so its start-up is not charged to the first step.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return bctx
}

// consoleProblems collects what the page reported as wrong: exceptions,
// console errors and browser log errors (a CSP violation is one).
type consoleProblems struct {
	mu   sync.Mutex
	msgs []string
}

func watchConsole(t *testing.T, ctx context.Context) *consoleProblems {
	p := &consoleProblems{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" {
				// The deliberate bad sign-in is a 401 the browser logs.
				if strings.Contains(m.Text, "401") {
					continue
				}
				p.mu.Lock()
				p.msgs = append(p.msgs, m.String())
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *consoleProblems) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.msgs {
		t.Errorf("browser console: %s", m)
	}
}

func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(" ")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
