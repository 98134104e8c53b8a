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
	a := New(Config{
		Registry: r, Deployer: deployer{}, Logger: quiet,
		// Authentication is the auth package's; every request is let in.
		Require: func(string) func(http.Handler) http.Handler { return func(h http.Handler) http.Handler { return h } },
	})
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
