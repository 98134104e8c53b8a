package sdk_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/gustfaas/gust/sdk"
	"github.com/gustfaas/gust/sdk/lean"
)

// Outside gust the capabilities compile and fail with ErrUnavailable, so a
// function's own tests run on the developer's machine.
func TestCapabilitiesOutsideGust(t *testing.T) {
	var kv sdk.KV
	if _, err := kv.Get("k"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Get: %v", err)
	}
	if err := kv.Set("k", nil); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Set: %v", err)
	}
	if _, err := (lean.KV{}).List(""); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("List: %v", err)
	}
	req, _ := http.NewRequest("GET", "https://api.example.com/", nil)
	if _, err := sdk.Do(req); !errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, sdk.ErrDenied) {
		t.Errorf("Do: %v", err)
	}
	if _, err := sdk.Client.Get("https://api.example.com/"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Client.Get: %v", err)
	}
	if _, err := lean.Fetch("GET", "https://api.example.com/", nil, nil); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("lean.Fetch: %v", err)
	}
}
