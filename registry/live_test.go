package registry

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gustfaas/gust"
)

// A deploy that reserved its number before another but finishes after it
// stores its version and leaves live on the newer one.
func TestDeployFinishingLastKeepsNewerLive(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	if _, err := r.Deploy(ctx, "fn", gust.Spec{}, "", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	// The slow deploy reserves version 2 ...
	n, createdAt, err := r.reserve(ctx, "fn")
	if err != nil || n != 2 {
		t.Fatalf("reserve: %d %v", n, err)
	}
	// ... a fast one takes 3 and makes it live ...
	if v, err := r.Deploy(ctx, "fn", gust.Spec{}, "", []byte("v3")); err != nil || v.Number != 3 {
		t.Fatalf("deploy: %v %v", v, err)
	}
	// ... then the slow one reaches its live step.
	live, err := r.makeLive(ctx, "fn", n, createdAt)
	if err != nil || live {
		t.Fatalf("makeLive of the older version: live=%v err=%v, want false and no error", live, err)
	}
	f, err := r.Function(ctx, "fn")
	if err != nil {
		t.Fatal(err)
	}
	if f.Live != 3 || !aliasEqual(f.Aliases[gust.AliasLive], liveAlias(3)) {
		t.Fatalf("live moved back to the older deploy: %+v", f)
	}
	// A live alias that splits traffic to a newer version counts too.
	split := gust.Alias{Name: gust.AliasLive, Targets: []gust.AliasTarget{{Version: 1, Weight: 90}, {Version: 3, Weight: 10}}}
	if _, err := r.SetAlias(ctx, "fn", split); err != nil {
		t.Fatal(err)
	}
	if live, err := r.makeLive(ctx, "fn", 2, createdAt); err != nil || live {
		t.Fatalf("makeLive under a canary of a newer version: live=%v err=%v", live, err)
	}
	if f, _ := r.Function(ctx, "fn"); !aliasEqual(f.Aliases[gust.AliasLive], split) {
		t.Fatalf("the canary was replaced: %+v", f.Aliases[gust.AliasLive])
	}
}

// Rollback still moves live back on purpose, and the next deploy moves it
// forward again.
func TestRollbackThenDeployMovesLiveForward(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	for i := 1; i <= 3; i++ {
		if _, err := r.Deploy(ctx, "fn", gust.Spec{}, "", fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := r.Rollback(ctx, "fn", 1)
	if err != nil || f.Live != 1 {
		t.Fatalf("rollback: %+v %v", f, err)
	}
	v, err := r.Deploy(ctx, "fn", gust.Spec{}, "", []byte("v4"))
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := r.Function(ctx, "fn"); f.Live != v.Number || !aliasEqual(f.Aliases[gust.AliasLive], liveAlias(v.Number)) {
		t.Fatalf("deploy after a rollback: live %d, want %d", f.Live, v.Number)
	}
}

// However concurrent deploys of one function interleave, live ends on the
// newest version.
func TestConcurrentDeploysLeaveNewestLive(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	for round := range 5 {
		name := fmt.Sprintf("f%d", round)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if _, err := r.Deploy(ctx, name, gust.Spec{}, "", []byte{byte(i), 1, 2}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		f, err := r.Function(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Live != f.LatestVersion || !aliasEqual(f.Aliases[gust.AliasLive], liveAlias(f.LatestVersion)) {
			t.Fatalf("round %d: live %d (%+v), latest %d", round, f.Live, f.Aliases[gust.AliasLive], f.LatestVersion)
		}
	}
}

// An alias named with digits only could never be reached: NAME@3 is
// version 3.
func TestDigitOnlyAliasNameRefused(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	if _, err := r.Deploy(ctx, "fn", gust.Spec{}, "", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	_, err := r.SetAlias(ctx, "fn", gust.Alias{Name: "3", Targets: []gust.AliasTarget{{Version: 1, Weight: 100}}})
	wantCode(t, err, gust.EINVALID)
	if msg := gust.ErrorMessage(err); !strings.Contains(msg, `"3"`) || !strings.Contains(msg, "version") {
		t.Fatalf("message %q does not say why", msg)
	}
	for _, ok := range []string{"v3", "3a", "2024-q1"} {
		if _, err := r.SetAlias(ctx, "fn", gust.Alias{Name: ok, Targets: []gust.AliasTarget{{Version: 1, Weight: 100}}}); err != nil {
			t.Fatalf("alias %q: %v", ok, err)
		}
	}
}
