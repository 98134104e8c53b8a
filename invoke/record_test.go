package invoke

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gustfaas/gust"
)

type records struct {
	mu  sync.Mutex
	got []gust.Invocation
}

func (r *records) Record(inv *gust.Invocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, *inv)
}

// A call that no instance ran (its start failed) is recorded as not run,
// so the meter bills nothing for it, and as cold: its instance started
// and failed. A call that ran is not "not run".
func TestRecordSaysWhetherTheCallRan(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t)
	rec := &records{}
	d := textDriver{release: make(chan struct{}), closed: new(atomic.Int32)}
	iv := New(Config{Registry: reg, Drivers: []gust.Driver{d}, Recorder: rec, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer iv.Close(ctx)
	spec := gust.Spec{Runtime: gust.RuntimeWasm}
	for _, name := range []string{"broken", "fine"} {
		v, err := reg.Deploy(ctx, name, spec, "reactor", []byte(name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = iv.Invoke(ctx, v, &gust.Request{Method: "GET", Path: "/"})
		if (err != nil) != (name == "broken") {
			t.Fatalf("%s: err = %v", name, err)
		}
	}
	if len(rec.got) != 2 {
		t.Fatalf("%d records, want 2", len(rec.got))
	}
	// The failed start was a cold start all the same.
	if r := rec.got[0]; !r.NotRun || r.Status != gust.StatusError || !r.Cold {
		t.Errorf("failed start recorded as %+v, want notRun, error and cold", r)
	}
	if r := rec.got[1]; r.NotRun || r.Status != gust.StatusOK || !r.Cold {
		t.Errorf("a call that ran cold recorded as %+v", r)
	}
}

// secretSource holds the values of the secrets that exist.
type secretSource map[string]string

func (s secretSource) Values(_ context.Context, names []string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		v, ok := s[n]
		if !ok {
			return nil, gust.Errorf(gust.ENOTFOUND, "no secret %s", n)
		}
		out[n] = v
	}
	return out, nil
}

// A function whose secret was removed after its deploy is not "not found"
// (the contract's 404 is for an unknown function): it is unavailable, and
// the error names the secret and what to do.
func TestRemovedSecretIsNotNotFound(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t)
	secrets := secretSource{}
	d := textDriver{release: make(chan struct{}), closed: new(atomic.Int32)}
	iv := New(Config{Registry: reg, Drivers: []gust.Driver{d}, Secrets: secrets, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer iv.Close(ctx)
	v, err := reg.Deploy(ctx, "withsecret", gust.Spec{Runtime: gust.RuntimeWasm, Secrets: []string{"DB_PASSWORD"}}, "reactor", []byte("fine"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = iv.Invoke(ctx, v, &gust.Request{Method: "GET", Path: "/"})
	if gust.ErrorCode(err) != gust.EUNAVAILABLE || !strings.Contains(err.Error(), "no secret DB_PASSWORD") {
		t.Fatalf("err = %v (code %s), want unavailable naming the secret", err, gust.ErrorCode(err))
	}
	// Once the secret is set again the next call starts the function.
	secrets["DB_PASSWORD"] = "s3cret"
	if _, err := iv.Invoke(ctx, v, &gust.Request{Method: "GET", Path: "/"}); err != nil {
		t.Fatal(err)
	}
}
