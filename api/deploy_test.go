package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/gustfaas/gust/registry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// overtaken is the registry as a deploy sees it when a newer deploy of the
// same function finishes while it is still running: the newer one makes
// its version live first. The race itself is the registry's to settle
// (its tests force it); here only the answer is checked.
type overtaken struct{ *registry.Registry }

func (o overtaken) Deploy(ctx context.Context, name string, spec gust.Spec, shape string, code []byte) (*gust.Version, error) {
	v, err := o.Registry.Deploy(ctx, name, spec, shape, code)
	if err != nil {
		return nil, err
	}
	if _, err := o.Registry.Deploy(ctx, name, spec, shape, append(code, '!')); err != nil {
		return nil, err
	}
	return v, nil
}

// deployer prepares nothing: compiling code is the drivers' to test.
type deployer struct{}

type module struct{}

func (module) Shape() string { return "reactor" }
func (module) NewInstance(context.Context) (gust.Instance, error) {
	return nil, gust.Errorf(gust.EINTERNAL, "not run here")
}
func (module) Close(context.Context) error { return nil }
func (deployer) Prepare(context.Context, string, int, gust.Spec, []byte) (gust.Module, error) {
	return module{}, nil
}
func (deployer) Adopt(*gust.Version, int, gust.Module) {}
func (deployer) Discard(gust.Module)                   {}
func (deployer) Stats() []gust.PoolStats               { return nil }
func (deployer) Reconcile(context.Context)             {}
func (deployer) SnapshotState(string, int) string      { return "" }

func newTestAPI(t *testing.T, wrap func(*registry.Registry) gust.Registry) *httptest.Server {
	t.Helper()
	return newTestAPIWith(t, wrap, nil)
}

// newTestAPIWith is newTestAPI with set changing the config first.
func newTestAPIWith(t *testing.T, wrap func(*registry.Registry) gust.Registry, set func(*Config)) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg, err := registry.Open(ctx, b.JetStream(), registry.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	var r gust.Registry = reg
	if wrap != nil {
		r = wrap(reg)
	}
	cfg := Config{
		Registry: r, Deployer: deployer{}, Logger: quiet,
		// Authentication is the auth package's; every request is let in.
		Require: func(string) func(http.Handler) http.Handler { return func(h http.Handler) http.Handler { return h } },
	}
	if set != nil {
		set(&cfg)
	}
	a := New(cfg)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

func postDeploy(t *testing.T, url, name, spec string) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for part, content := range map[string]string{"spec": spec, "code": "code of " + name} {
		w, err := mw.CreateFormFile(part, part)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(content))
	}
	_ = mw.Close()
	resp, err := http.Post(url+"/v1/functions/"+name+"/versions", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// A deploy answers whether its version is live; one that a newer deploy
// overtook says which version is.
func TestDeployAnswerSaysWhetherLive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wrap     func(*registry.Registry) gust.Registry
		live     bool
		liveVer  int
		deployed int
	}{
		{"alone", nil, true, 1, 1},
		{"overtaken", func(r *registry.Registry) gust.Registry { return overtaken{r} }, false, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestAPI(t, tc.wrap)
			status, body := postDeploy(t, srv.URL, "fn", `{}`)
			if status != http.StatusCreated {
				t.Fatalf("status %d: %s", status, body)
			}
			var got struct {
				Number      int  `json:"version"`
				Live        bool `json:"live"`
				LiveVersion int  `json:"liveVersion"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Number != tc.deployed || got.Live != tc.live || got.LiveVersion != tc.liveVer {
				t.Fatalf("answer %s: want version %d, live %v, liveVersion %d", body, tc.deployed, tc.live, tc.liveVer)
			}
		})
	}
}

// Without a principal that has admin scope (here: no Permits at all) a
// deploy cannot give a function a secret; an alias named with digits only
// is a 400.
func TestDeployRefusesSecretsAndDigitAliases(t *testing.T) {
	srv := newTestAPI(t, nil)
	status, body := postDeploy(t, srv.URL, "fn", `{"secrets":["DB_PASSWORD"]}`)
	var e struct{ Error, Code string }
	if err := json.Unmarshal(body, &e); err != nil || status != http.StatusForbidden || e.Code != gust.EFORBIDDEN || !strings.Contains(e.Error, "DB_PASSWORD") {
		t.Fatalf("deploy naming a secret: %d %s", status, body)
	}
	if status, body := postDeploy(t, srv.URL, "fn", `{}`); status != http.StatusCreated {
		t.Fatalf("deploy: %d %s", status, body)
	}
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/functions/fn/aliases/3", strings.NewReader(`{"targets":[{"version":1,"weight":100}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), gust.EINVALID) {
		t.Fatalf("alias named 3: %d %s", resp.StatusCode, b)
	}
}

// A function whose memory is more than the node's whole memory budget is
// refused at deploy (400, naming both figures and the flag that sets
// each) and nothing is stored: no instance of it could ever start. One
// that fits the budget, however full, is deployed.
func TestDeployRefusesMemoryOverTheNodeBudget(t *testing.T) {
	srv := newTestAPIWith(t, nil, func(c *Config) {
		c.Budget = func() (int, int) { return 256, 256 }
	})
	status, body := postDeploy(t, srv.URL, "big", `{"memory":512}`)
	var e struct{ Error, Code string }
	if err := json.Unmarshal(body, &e); err != nil || status != http.StatusBadRequest || e.Code != gust.EINVALID {
		t.Fatalf("deploy of 512 MB on a 256 MB node: %d %s", status, body)
	}
	for _, want := range []string{"512 MB", "256 MB", "--memory", "gust serve --memory-budget"} {
		if !strings.Contains(e.Error, want) {
			t.Errorf("message %q does not name %q", e.Error, want)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/functions/big")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the refused deploy stored a function: GET answered %d", resp.StatusCode)
	}
	if status, body := postDeploy(t, srv.URL, "big", `{"memory":256}`); status != http.StatusCreated {
		t.Fatalf("deploy of 256 MB on a 256 MB node: %d %s", status, body)
	}
}

// A version stored before the node's budget shrank (a restart with a
// smaller --memory-budget) cannot be made live again by a rollback or an
// alias: no instance of it could start. One that fits can.
func TestRollbackRefusesVersionOverTheNodeBudget(t *testing.T) {
	var total atomic.Int64
	total.Store(1024)
	srv := newTestAPIWith(t, nil, func(c *Config) {
		c.Budget = func() (int, int) { return int(total.Load()), 0 }
	})
	for _, spec := range []string{`{"memory":512}`, `{"memory":128}`} {
		if status, body := postDeploy(t, srv.URL, "fn", spec); status != http.StatusCreated {
			t.Fatalf("deploy %s: %d %s", spec, status, body)
		}
	}
	total.Store(256)
	send := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/functions/fn/rollback", `{"version":1}`},
		{"PUT", "/v1/functions/fn/aliases/old", `{"targets":[{"version":1,"weight":100}]}`},
		{"PUT", "/v1/functions/fn/aliases/live", `{"targets":[{"version":2,"weight":90},{"version":1,"weight":10}]}`},
	} {
		status, body := send(tc.method, tc.path, tc.body)
		if status != http.StatusBadRequest || !strings.Contains(body, gust.EINVALID) ||
			!strings.Contains(body, "version 1") || !strings.Contains(body, "512 MB") || !strings.Contains(body, "256 MB") {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, status, body)
		}
	}
	if status, body := send("GET", "/v1/functions/fn", ""); status != http.StatusOK || !strings.Contains(body, `"live": 2`) || strings.Contains(body, `"old"`) {
		t.Errorf("a refused change was stored: %d %s", status, body)
	}
	if status, body := send("POST", "/v1/functions/fn/rollback", `{"version":2}`); status != http.StatusOK {
		t.Errorf("rollback to a version that fits: %d %s", status, body)
	}
}

// Provisioned instances that together need more than the node's budget
// are refused at deploy, naming the product; ones that fit are deployed.
func TestDeployRefusesMinInstancesOverTheNodeBudget(t *testing.T) {
	srv := newTestAPIWith(t, nil, func(c *Config) {
		c.Budget = func() (int, int) { return 256, 0 }
	})
	status, body := postDeploy(t, srv.URL, "warm", `{"memory":128,"minInstances":3}`)
	var e struct{ Error, Code string }
	if err := json.Unmarshal(body, &e); err != nil || status != http.StatusBadRequest || e.Code != gust.EINVALID {
		t.Fatalf("deploy of 3 × 128 MB provisioned on a 256 MB node: %d %s", status, body)
	}
	for _, want := range []string{"384 MB", "256 MB", "--min-instances"} {
		if !strings.Contains(e.Error, want) {
			t.Errorf("message %q does not name %q", e.Error, want)
		}
	}
	if status, body := postDeploy(t, srv.URL, "warm", `{"memory":128,"minInstances":1}`); status != http.StatusCreated {
		t.Fatalf("deploy of 1 × 128 MB provisioned on a 256 MB node: %d %s", status, body)
	}
	// The budget holds every function's provisioned instances: another
	// 2 × 128 MB does not fit beside warm's 128 MB; 1 × 128 MB does, and
	// warm itself may deploy again (its own old version does not count).
	status, body = postDeploy(t, srv.URL, "warm2", `{"memory":128,"minInstances":2}`)
	if err := json.Unmarshal(body, &e); err != nil || status != http.StatusBadRequest || !strings.Contains(e.Error, "warm 128 MB") {
		t.Fatalf("deploy of 2 × 128 MB beside warm's 128 MB on a 256 MB node: %d %s", status, body)
	}
	for _, name := range []string{"warm2", "warm"} {
		if status, body := postDeploy(t, srv.URL, name, `{"memory":128,"minInstances":1}`); status != http.StatusCreated {
			t.Fatalf("deploy of %s, 1 × 128 MB beside 128 MB on a 256 MB node: %d %s", name, status, body)
		}
	}
}
