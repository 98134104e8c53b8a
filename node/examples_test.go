package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/async"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// exampleManifest reads examples/NAME/gust.yaml as `gust deploy -f` does,
// strictly, and returns its spec.
func exampleManifest(t *testing.T, name string) gust.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wasmtest.Root(), "examples", name, "gust.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name string `json:"name"`
		Code string `json:"code"`
		gust.Spec
	}
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		t.Fatalf("examples/%s/gust.yaml: %v", name, err)
	}
	if m.Name != name {
		t.Fatalf("examples/%s/gust.yaml names %q", name, m.Name)
	}
	return m.Spec
}

// waitInvocation polls an async invocation until it is final.
func waitInvocation(t *testing.T, c *client.Client, id string) *client.InvocationStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.Invocation(context.Background(), id)
		if err == nil && st.Final() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocation %s not final: %+v %v", id, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// examples/webhook deployed from its manifest: a signed GitHub push is
// accepted at /hooks/github, run asynchronously, recorded in the log and
// summarized in the invocation's result; an unsigned one is refused.
func TestExampleWebhook(t *testing.T) {
	n, c := testNode(t, "", nil)
	ctx := context.Background()
	secret := []byte("it's a secret to everybody")
	if _, err := c.SetSecret(ctx, "GITHUB_WEBHOOK_SECRET", secret); err != nil {
		t.Fatal(err)
	}
	v := deploy(t, c, "webhook", exampleManifest(t, "webhook"), wasmtest.Code(t, wasmtest.GoGuest(t, exampleSource(t, "webhook"))))
	if len(v.Spec.Triggers) != 1 || v.Spec.Triggers[0].Webhook == nil {
		t.Fatalf("deployed triggers = %+v", v.Spec.Triggers)
	}

	payload := []byte(`{"ref":"refs/heads/main","before":"0000000000","after":"abcdef1234567",
		"repository":{"full_name":"gustfaas/gust"},"pusher":{"name":"ada"},
		"commits":[{"id":"abcdef1234567","message":"Add webhooks\n\nbody","author":{"name":"Ada"}},
		           {"id":"1234567abcdef","message":"Fix typo","author":{"name":"Grace"}}]}`)
	post := func(sig, event string) result {
		var r result
		deadline := time.Now().Add(20 * time.Second)
		for {
			req := map[string]string{"X-GitHub-Event": event, "X-GitHub-Delivery": fmt.Sprint(time.Now().UnixNano()), "Content-Type": "application/json"}
			if sig != "" {
				req[async.HeaderGitHubSignature] = sig
			}
			r = doHeaders(t, "POST", n.URL()+"/hooks/github", payload, req)
			// The route appears once the trigger manager has seen the deploy.
			if r.status != 404 || time.Now().After(deadline) {
				return r
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wantError(t, post("sha256="+async.SignHMACSHA256([]byte("wrong"), payload), "push"), 401, gust.EUNAUTHORIZED)
	wantError(t, post("", "push"), 401, gust.EUNAUTHORIZED)

	r := post("sha256="+async.SignHMACSHA256(secret, payload), "push")
	if r.status != 202 {
		t.Fatalf("signed push = %d %s", r.status, r.body)
	}
	id := r.header.Get("X-Gust-Invocation-Id")
	st := waitInvocation(t, c, id)
	if st.Status != "succeeded" || st.Trigger != "webhook" || st.Response == nil || st.Response.Status != 200 {
		t.Fatalf("status = %+v", st)
	}
	var sum struct {
		OK         bool     `json:"ok"`
		Repository string   `json:"repository"`
		Branch     string   `json:"branch"`
		Commits    int      `json:"commits"`
		Messages   []string `json:"messages"`
	}
	if err := json.Unmarshal([]byte(st.Response.Body), &sum); err != nil || !sum.OK || sum.Repository != "gustfaas/gust" ||
		sum.Branch != "main" || sum.Commits != 2 || sum.Messages[0] != "Add webhooks" {
		t.Fatalf("summary = %s (%v)", st.Response.Body, err)
	}
	// Recorded: the push and its commits are in the function's log.
	logs := exampleLogs(t, c, "webhook", id, "Fix typo")
	for _, want := range []string{"push to gustfaas/gust refs/heads/main by ada: 2 commit(s)", "abcdef1 Ada: Add webhooks"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %q:\n%s", want, logs)
		}
	}

	// Another event type is acknowledged and ignored.
	r = post("sha256="+async.SignHMACSHA256(secret, payload), "issues")
	if st := waitInvocation(t, c, r.header.Get("X-Gust-Invocation-Id")); st.Response == nil || st.Response.Status != 202 {
		t.Fatalf("issues event: %+v", st)
	}
}

// examples/cleanup deployed from its manifest with a 1s schedule: each
// tick deletes the files older than its TTL and keeps the rest.
func TestExampleCleanup(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 is not installed (scripts/setup installs it)")
	}
	_, c := testNode(t, "", nil)
	// Outside /tmp, /var/tmp and /dev/shm, which the process sandbox
	// replaces with a private tmpfs; writable by the function's own uid.
	base := "/var/lib"
	if _, err := os.Stat(base); err != nil {
		base = wasmtest.Root()
	}
	dir, err := os.MkdirTemp(base, "gust-cleanup-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{"expired-1", "expired-2"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("old"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "fresh"), []byte("new"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "subdir"), old, old); err != nil {
		t.Fatal(err)
	}

	spec := exampleManifest(t, "cleanup")
	if len(spec.Triggers) != 1 || spec.Triggers[0].Cron == "" {
		t.Fatalf("manifest triggers = %+v", spec.Triggers)
	}
	spec.Env = map[string]string{"CLEANUP_DIR": dir, "TTL_SECONDS": "3600"}
	spec.Triggers[0].Cron = "@every 1s"
	deploy(t, c, "cleanup", spec, zipExample(t, filepath.Join(wasmtest.Root(), "examples", "cleanup")))

	deadline := time.Now().Add(60 * time.Second)
	for {
		left, _ := os.ReadDir(dir)
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		if strings.Join(names, ",") == "fresh,subdir" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the ticks the directory holds %v", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs := exampleLogs(t, c, "cleanup", "", "deleted expired-2")
	if !strings.Contains(logs, "cleanup of "+dir) || !strings.Contains(logs, "deleted expired-1") {
		t.Fatalf("log:\n%s", logs)
	}
}

// exampleSource returns the main.go of a Go example, to be built by
// wasmtest (which resolves the sdk without the example's go.mod).
func exampleSource(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wasmtest.Root(), "examples", name, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exampleLogs polls the function's log (of one invocation if id is set)
// until it contains until, and returns the messages.
func exampleLogs(t *testing.T, c *client.Client, fn, id, until string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rc, err := c.Logs(context.Background(), fn, client.LogQuery{Invocation: id})
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		sc := bufio.NewScanner(io.LimitReader(rc, 1<<20))
		for sc.Scan() {
			var line struct {
				Message string `json:"message"`
				Line    string `json:"line"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				sb.WriteString(line.Message + line.Line + "\n")
			}
		}
		rc.Close()
		if strings.Contains(sb.String(), until) || time.Now().After(deadline) {
			return sb.String()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func doHeaders(t *testing.T, method, url string, body []byte, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, b}
}
