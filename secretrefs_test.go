package gust

import (
	"reflect"
	"testing"
)

// Every way a spec names a secret is listed, with how it is used.
func TestSecretRefs(t *testing.T) {
	s := Spec{
		Secrets:  []string{"DB"},
		Triggers: []Trigger{{Cron: "@every 1m"}, {Webhook: &WebhookTrigger{Path: "/hooks/gh", Secret: "GH", Scheme: "github"}}},
		Routes: []Route{
			{Path: "/a", Auth: AuthJWT, JWT: &RouteJWT{Secret: "HS"}},
			{Name: "b", Path: "/b", Auth: AuthJWT, JWT: &RouteJWT{JWKS: "IDP", Audience: "x"}},
			{Path: "/c"},
		},
	}
	want := []SecretRef{
		{Name: "DB", As: "env"},
		{Name: "GH", As: "webhook /hooks/gh"},
		{Name: "HS", As: `jwt route "` + s.Routes[0].ID() + `"`},
		{Name: "IDP", As: `jwt route "b"`},
	}
	got := s.SecretRefs()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SecretRefs = %+v\nwant %+v", got, want)
	}
	for i, r := range got {
		if r.Key() != (i > 0) {
			t.Errorf("%+v: Key() = %v", r, r.Key())
		}
	}
}
