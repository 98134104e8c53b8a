package process

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// A function keeps its user id across restarts of gust, whatever order
// functions load in, and no two loaded functions ever share one.
func TestFunctionUIDsStableAndUnique(t *testing.T) {
	work := t.TempDir()
	code := makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: []byte("#!/bin/sh\n")})
	open := func(count int) *Driver {
		t.Helper()
		d, err := New(Config{WorkDir: work, UIDCount: count, SpareSandboxes: -1, Prewarm: -1,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StartTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	spec := gust.Spec{Runtime: gust.RuntimeProcess}

	d := open(3)
	uids := map[string]int{}
	for _, f := range []string{"alpha", "beta", "gamma"} {
		load(t, d, f, spec, code, nil)
		uids[f] = d.uidFor(f)
	}
	if uids["alpha"] == uids["beta"] || uids["beta"] == uids["gamma"] || uids["alpha"] == uids["gamma"] {
		t.Fatalf("loaded functions share a uid: %v", uids)
	}
	// All three uids belong to loaded functions: a fourth gets none
	// rather than one of theirs.
	if m, err := loadErr(d, "delta", spec, code, nil); err == nil {
		m.Close(context.Background())
		t.Errorf("a fourth function got uid %d beside %v", d.uidFor("delta"), uids)
	}
	d.Close(context.Background())

	// After a restart, in another order, each function has its uid again.
	d = open(3)
	defer d.Close(context.Background())
	var beta gust.Module
	for _, f := range []string{"gamma", "beta", "alpha"} {
		m := load(t, d, f, spec, code, nil)
		if f == "beta" {
			beta = m
		}
		if got := d.uidFor(f); got != uids[f] {
			t.Errorf("after a restart %s has uid %d, had %d", f, got, uids[f])
		}
	}
	// Once beta is unloaded, its uid may go to a new function: never to
	// two loaded ones.
	beta.Close(context.Background())
	load(t, d, "delta", spec, code, nil)
	if got := d.uidFor("delta"); got != uids["beta"] {
		t.Errorf("delta has uid %d, want beta's freed %d (others: %v)", got, uids["beta"], uids)
	}
}

// A module closed while an instance of it still runs (a pool closed by
// force) leaves that instance's process running as the function's uid:
// the uid is not another function's until the instance is closed.
func TestUIDHeldByRunningInstance(t *testing.T) {
	d, err := New(Config{WorkDir: t.TempDir(), UIDCount: 1, SpareSandboxes: -1, Prewarm: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StartTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	code := makeZip(t, zipEntry{name: "bootstrap", mode: 0o755, data: goBuild(t, "", "./testdata/httpfn")})
	spec := gust.Spec{Runtime: gust.RuntimeProcess}

	f, err := loadErr(d, "f", spec, code, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, f)
	fUID := d.uidFor("f")
	f.Close(context.Background())
	if g, err := loadErr(d, "g", spec, code, nil); err == nil {
		g.Close(context.Background())
		t.Fatalf("g got uid %d while f's instance still runs as %d", d.uidFor("g"), fUID)
	} else {
		wantCode(t, err, gust.EUNAVAILABLE)
	}
	in.Close(context.Background())
	g, err := loadErr(d, "g", spec, code, nil)
	if err != nil {
		t.Fatalf("g once f's instance is closed: %v", err)
	}
	defer g.Close(context.Background())
	if got := d.uidFor("g"); got != fUID {
		t.Errorf("g has uid %d, want f's freed %d", got, fUID)
	}
}
