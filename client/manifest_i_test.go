package client

import (
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// gust.Duration reads a bare number as nanoseconds: in a manifest that is
// never what was meant, at any depth.
func TestManifestRefusesUnitlessDurations(t *testing.T) {
	for _, c := range []struct{ yaml, path, suggest string }{
		{"maxEventAge: 3600\n", "maxEventAge", `"3600s"`},
		{"retryBackoff: 5\n", "retryBackoff", `"5s"`},
		{"idleTimeout: 1.5\n", "idleTimeout", `"1.5s"`},
		{"timeout: 30\n", "timeout", `"30s"`},
		{"queueTimeout: 1000000\n", "queueTimeout", `"1000000s"`},
		{"triggers:\n- cron: '@every 1m'\n  catchUp: 600\n", "triggers[0].catchUp", `"600s"`},
		{"triggers:\n- cron: '@every 1m'\n- webhook: {path: /hooks/x, secret: s, scheme: stripe, tolerance: 300}\n",
			"triggers[1].webhook.tolerance", `"300s"`},
		{"routes:\n- path: /\n  auth: jwt\n  jwt: {secret: k, leeway: 30}\n", "routes[0].jwt.leeway", `"30s"`},
		{"timeout: true\n", "timeout", `"30s"`},
		{"maxEventAge: \"3600\"\n", "maxEventAge", `"3600s"`},
	} {
		_, err := ParseManifest([]byte("name: f\n" + c.yaml))
		if gust.ErrorCode(err) != gust.EINVALID {
			t.Errorf("%q: error %v, want EINVALID", c.yaml, err)
			continue
		}
		msg := gust.ErrorMessage(err)
		if !strings.Contains(msg, c.path+": write a duration with its unit") || !strings.Contains(msg, c.suggest) {
			t.Errorf("%q: %q does not name %s and suggest %s", c.yaml, msg, c.path, c.suggest)
		}
	}
}

func TestManifestDurationsWithUnits(t *testing.T) {
	m, err := ParseManifest([]byte(`name: f
maxEventAge: 3600s
retryBackoff: 5s
triggers:
- cron: "@every 1m"
  catchUp: 10m
- webhook: {path: /hooks/x, secret: s, scheme: stripe, tolerance: 5m}
routes:
- path: /
  auth: jwt
  jwt: {secret: k, leeway: 30s}
env: {A: "1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxEventAge.D() != time.Hour || m.RetryBackoff.D() != 5*time.Second ||
		m.Triggers[0].CatchUp.D() != 10*time.Minute || m.Triggers[1].Webhook.Tolerance.D() != 5*time.Minute ||
		m.Routes[0].JWT.Leeway.D() != 30*time.Second {
		t.Fatalf("durations read as %+v", m.Spec)
	}
}
