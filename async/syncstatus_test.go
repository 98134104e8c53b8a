package async

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
)

// recordFinder finds invocations among those the harness's invoker
// recorded, as the meter finds them among its usage records.
type recordFinder struct{ rec *records }

func (f *recordFinder) Invocation(_ context.Context, id string) (*gust.Invocation, error) {
	mine, _ := f.rec.of(id)
	if len(mine) == 0 {
		return nil, gust.Errorf(gust.ENOTFOUND, "no invocation %q", id)
	}
	inv := mine[len(mine)-1]
	return &inv, nil
}

// GET /v1/invocations/ID answers for a sync invocation too, in the async
// status's shape with kind "sync": status, version, duration, cold and
// the error of a failed one. An async id stays kind "async"; the record
// of an async event whose status expired is not passed off as a sync
// call; a sync invocation cannot be canceled (409).
func TestStatusOfSyncInvocation(t *testing.T) {
	finder := &recordFinder{}
	h := newHarness(t, "", func(c *Config) { c.Sync = finder })
	finder.rec = h.rec
	v := h.deploy("echo", gust.Spec{})
	ctx := context.Background()

	if _, err := h.inv.Invoke(ctx, v, &gust.Request{ID: "sync-ok", Method: http.MethodPost, Path: "/", Body: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.inv.Invoke(ctx, v, &gust.Request{ID: "sync-bad", Method: http.MethodPost, Path: "/", Body: []byte("fail:always")}); gust.ErrorCode(err) != gust.EFUNCTION {
		t.Fatalf("failing call: %v", err)
	}
	ok, err := h.c.Invocation(ctx, "sync-ok")
	if err != nil {
		t.Fatal(err)
	}
	if ok.Kind != KindSync || ok.Function != "echo" || ok.Version != 1 || ok.Trigger != "http" || ok.Status != StatusSucceeded ||
		ok.Attempts != 1 || ok.HTTPStatus != 200 || ok.Cold == nil || !*ok.Cold || ok.FinishedAt == nil || ok.Error != "" || !ok.Final() {
		t.Fatalf("sync ok: %+v", ok)
	}
	bad, err := h.c.Invocation(ctx, "sync-bad")
	if err != nil {
		t.Fatal(err)
	}
	if bad.Kind != KindSync || bad.Status != StatusFailed || !strings.Contains(bad.Error, "failing attempt") || bad.Cold == nil || *bad.Cold {
		t.Fatalf("sync failed: %+v", bad)
	}

	id := h.accept("/async/echo", []byte("later"), nil)
	if st := h.waitStatus(id, StatusSucceeded); st.Kind != KindAsync {
		t.Fatalf("async status kind %q", st.Kind)
	}
	// Its worker's run is recorded too; with its status gone it is not a
	// sync call.
	h.rec.Record(&gust.Invocation{ID: "expired-async", Function: "echo", Version: 1, Trigger: "async", Status: gust.StatusOK})
	for _, missing := range []string{"expired-async", "never-was"} {
		if _, err := h.c.Invocation(ctx, missing); gust.ErrorCode(err) != gust.ENOTFOUND {
			t.Fatalf("%s: %v, want not found", missing, err)
		}
	}
	if _, err := h.c.CancelInvocation(ctx, "sync-ok"); gust.ErrorCode(err) != gust.ECONFLICT || !strings.Contains(err.Error(), "sync call") {
		t.Fatalf("cancel of a sync call: %v", err)
	}
}

// A sync call no instance ran (throttled, or none could be had) started
// neither warm nor cold: its status has no cold. It used to say cold
// false, which the CLI showed as "start: warm".
func TestStatusOfSyncCallNotRunHasNoStart(t *testing.T) {
	finder := &recordFinder{}
	h := newHarness(t, "", func(c *Config) { c.Sync = finder })
	finder.rec = h.rec
	ctx := context.Background()
	h.rec.Record(&gust.Invocation{ID: "sync-throttled", Function: "echo", Version: 1, Trigger: "http", Status: gust.StatusThrottled, Error: "throttled"})
	h.rec.Record(&gust.Invocation{ID: "sync-notrun", Function: "echo", Version: 1, Trigger: "http", Status: gust.StatusError, Error: "start failed", Cold: true, NotRun: true})
	h.rec.Record(&gust.Invocation{ID: "sync-warm", Function: "echo", Version: 1, Trigger: "http", Status: gust.StatusOK})
	for _, id := range []string{"sync-throttled", "sync-notrun"} {
		s, err := h.c.Invocation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind != KindSync || s.Status != StatusFailed || s.Cold != nil {
			t.Fatalf("%s: %+v, want a failed sync call without cold", id, s)
		}
	}
	if s, err := h.c.Invocation(ctx, "sync-warm"); err != nil || s.Cold == nil || *s.Cold {
		t.Fatalf("sync-warm: %+v %v, want cold false", s, err)
	}
}
