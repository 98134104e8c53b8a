package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startBroker(t *testing.T, dir string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t *testing.T, js jetstream.JetStream, cfg Config) *Registry {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	r, err := Open(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// setup returns a Registry on a fresh embedded broker, both closed when the
// test ends.
func setup(t *testing.T, cfg Config) (*Registry, *broker.Broker) {
	t.Helper()
	b := startBroker(t, t.TempDir())
	t.Cleanup(b.Close)
	r := open(t, b.JetStream(), cfg)
	t.Cleanup(r.Close)
	return r, b
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := gust.ErrorCode(err); got != code {
		t.Fatalf("error code %q (%v), want %q", got, err, code)
	}
}

func digestOf(code []byte) string {
	s := sha256.Sum256(code)
	return "sha256:" + hex.EncodeToString(s[:])
}

func countObjects(t *testing.T, r *Registry) int {
	t.Helper()
	list, err := r.obs.List(context.Background())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func kvKeys(t *testing.T, r *Registry) []string {
	t.Helper()
	keys, err := r.kv.Keys(context.Background())
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func liveAlias(n int) gust.Alias {
	return gust.Alias{Name: gust.AliasLive, Targets: []gust.AliasTarget{{Version: n, Weight: 100}}}
}

func TestDeployVersionsRollback(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})

	code1 := []byte("\x00asm one")
	v1, err := r.Deploy(ctx, "hello", gust.Spec{Env: map[string]string{"A": "1"}}, "reactor", code1)
	if err != nil {
		t.Fatal(err)
	}
	wantSpec := gust.Spec{Env: map[string]string{"A": "1"}}.WithDefaults()
	if v1.Number != 1 || v1.Function != "hello" || v1.Shape != "reactor" || v1.CodeDigest != digestOf(code1) ||
		v1.CodeSize != int64(len(code1)) || v1.CreatedAt.IsZero() {
		t.Fatalf("version 1 = %+v", v1)
	}
	if v1.Spec.Runtime != wantSpec.Runtime || v1.Spec.MemoryMB != wantSpec.MemoryMB || v1.Spec.Timeout != wantSpec.Timeout ||
		v1.Spec.MaxConcurrency != wantSpec.MaxConcurrency || v1.Spec.Env["A"] != "1" {
		t.Fatalf("stored spec lacks defaults: %+v", v1.Spec)
	}

	// Visible to this Registry's reads as soon as Deploy returns.
	f, err := r.Function(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if f.Live != 1 || f.LatestVersion != 1 || f.CreatedAt.IsZero() {
		t.Fatalf("function = %+v", f)
	}
	if a := f.Aliases[gust.AliasLive]; !aliasEqual(a, liveAlias(1)) {
		t.Fatalf("live alias = %+v", a)
	}
	got, err := r.Version(ctx, "hello", 1)
	if err != nil || got.CodeDigest != v1.CodeDigest || got.Spec.MemoryMB != gust.DefaultMemoryMB {
		t.Fatalf("Version(1) = %+v, %v", got, err)
	}
	b, err := r.Code(ctx, v1.CodeDigest)
	if err != nil || string(b) != string(code1) {
		t.Fatalf("Code = %q, %v", b, err)
	}

	code2 := []byte("\x00asm two")
	v2, err := r.Deploy(ctx, "hello", gust.Spec{MemoryMB: 256}, "reactor", code2)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Number != 2 {
		t.Fatalf("second deploy got version %d", v2.Number)
	}
	if f, _ := r.Function(ctx, "hello"); f.Live != 2 || f.LatestVersion != 2 {
		t.Fatalf("after second deploy: %+v", f)
	}
	vs, err := r.Versions(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Number != 1 || vs[1].Number != 2 || vs[1].Spec.MemoryMB != 256 {
		t.Fatalf("Versions = %+v", vs)
	}

	f, err = r.Rollback(ctx, "hello", 1)
	if err != nil {
		t.Fatal(err)
	}
	if f.Live != 1 || !aliasEqual(f.Aliases[gust.AliasLive], liveAlias(1)) || f.LatestVersion != 2 {
		t.Fatalf("after rollback: %+v", f)
	}
	if f, _ := r.Function(ctx, "hello"); f.Live != 1 {
		t.Fatalf("read after rollback: live %d", f.Live)
	}
	_, err = r.Rollback(ctx, "hello", 3)
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.Rollback(ctx, "hello", 0)
	wantCode(t, err, gust.ENOTFOUND)

	// Numbers are never reused, even after a rollback.
	v3, err := r.Deploy(ctx, "hello", gust.Spec{}, "reactor", code1)
	if err != nil {
		t.Fatal(err)
	}
	if v3.Number != 3 {
		t.Fatalf("deploy after rollback got version %d, want 3", v3.Number)
	}
	fs, err := r.Functions(ctx)
	if err != nil || len(fs) != 1 || fs[0].Name != "hello" || fs[0].Live != 3 {
		t.Fatalf("Functions = %+v, %v", fs, err)
	}
}

func aliasEqual(a, b gust.Alias) bool {
	return a.Name == b.Name && slices.Equal(a.Targets, b.Targets)
}

func TestNotFound(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	_, err := r.Function(ctx, "nope")
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.Version(ctx, "nope", 1)
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.Versions(ctx, "nope")
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.Rollback(ctx, "nope", 1)
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.SetAlias(ctx, "nope", gust.Alias{Name: "beta", Targets: []gust.AliasTarget{{Version: 1, Weight: 100}}})
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.DeleteAlias(ctx, "nope", "beta")
	wantCode(t, err, gust.ENOTFOUND)
	wantCode(t, r.Delete(ctx, "nope"), gust.ENOTFOUND)
	_, err = r.Code(ctx, digestOf([]byte("never stored")))
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.Code(ctx, "md5:abc")
	wantCode(t, err, gust.EINVALID)
	fs, err := r.Functions(ctx)
	if err != nil || len(fs) != 0 {
		t.Fatalf("Functions = %v, %v", fs, err)
	}

	if _, err := r.Deploy(ctx, "yes", gust.Spec{}, "", []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err = r.Version(ctx, "yes", 2)
	wantCode(t, err, gust.ENOTFOUND)
	if !strings.Contains(gust.ErrorMessage(err), "version 2") {
		t.Fatalf("message %q does not name the version", gust.ErrorMessage(err))
	}
	_, err = r.Version(ctx, "yes", 0)
	wantCode(t, err, gust.ENOTFOUND)
}

func TestDeployInvalidStoresNothing(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{MaxCodeBytes: 16})
	cases := []struct {
		name string
		fn   string
		spec gust.Spec
		code []byte
	}{
		{"uppercase name", "Hello", gust.Spec{}, []byte("x")},
		{"name with dot", "a.b", gust.Spec{}, []byte("x")},
		{"empty name", "", gust.Spec{}, []byte("x")},
		{"bad runtime", "ok", gust.Spec{Runtime: "cobol"}, []byte("x")},
		{"too much memory", "ok", gust.Spec{MemoryMB: gust.MaxMemoryMB + 1}, []byte("x")},
		{"bad env", "ok", gust.Spec{Env: map[string]string{"1X": "y"}}, []byte("x")},
		{"empty code", "ok", gust.Spec{}, nil},
		{"code over limit", "ok", gust.Spec{}, make([]byte, 17)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.Deploy(ctx, c.fn, c.spec, "", c.code)
			wantCode(t, err, gust.EINVALID)
		})
	}
	if keys := kvKeys(t, r); len(keys) != 0 {
		t.Fatalf("invalid deploys left keys %v", keys)
	}
	if n := countObjects(t, r); n != 0 {
		t.Fatalf("invalid deploys left %d objects", n)
	}
}

func TestSameCodeStoredOnce(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	code := []byte("same code")
	for _, name := range []string{"a", "a", "b"} {
		if _, err := r.Deploy(ctx, name, gust.Spec{}, "", code); err != nil {
			t.Fatal(err)
		}
	}
	if n := countObjects(t, r); n != 1 {
		t.Fatalf("%d objects, want 1", n)
	}
	info, err := r.obs.GetInfo(ctx, strings.TrimPrefix(digestOf(code), "sha256:"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != uint64(len(code)) {
		t.Fatalf("object size %d", info.Size)
	}
}

func TestConcurrentDeploys(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	const n = 20
	numbers := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Half share one artifact, half bring their own.
			code := []byte("shared")
			if i%2 == 1 {
				code = fmt.Appendf(nil, "own %d", i)
			}
			v, err := r.Deploy(ctx, "busy", gust.Spec{}, "", code)
			errs[i] = err
			if err == nil {
				numbers[i] = v.Number
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("deploy %d: %v", i, err)
		}
	}
	slices.Sort(numbers)
	for i, got := range numbers {
		if got != i+1 {
			t.Fatalf("version numbers %v, want 1..%d each once", numbers, n)
		}
	}
	vs, err := r.Versions(ctx, "busy")
	if err != nil || len(vs) != n {
		t.Fatalf("Versions: %d, %v", len(vs), err)
	}
	f, err := r.Function(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	if f.LatestVersion != n || f.Live < 1 || f.Live > n || !aliasEqual(f.Aliases[gust.AliasLive], liveAlias(f.Live)) {
		t.Fatalf("function after concurrent deploys: %+v", f)
	}
	if c := countObjects(t, r); c != 1+n/2 {
		t.Fatalf("%d objects, want %d", c, 1+n/2)
	}
}

func TestAliases(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	for _, c := range []string{"v1", "v2"} {
		if _, err := r.Deploy(ctx, "fn", gust.Spec{}, "", []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	canary := gust.Alias{Name: "canary", Targets: []gust.AliasTarget{{Version: 1, Weight: 90}, {Version: 2, Weight: 10}}}
	f, err := r.SetAlias(ctx, "fn", canary)
	if err != nil {
		t.Fatal(err)
	}
	if !aliasEqual(f.Aliases["canary"], canary) || f.Live != 2 {
		t.Fatalf("after SetAlias: %+v", f)
	}
	if f, _ := r.Function(ctx, "fn"); !aliasEqual(f.Aliases["canary"], canary) {
		t.Fatalf("read after SetAlias: %+v", f.Aliases)
	}

	_, err = r.SetAlias(ctx, "fn", gust.Alias{Name: "bad", Targets: []gust.AliasTarget{{Version: 1, Weight: 50}, {Version: 2, Weight: 40}}})
	wantCode(t, err, gust.EINVALID)
	_, err = r.SetAlias(ctx, "fn", gust.Alias{Name: "Bad Name", Targets: []gust.AliasTarget{{Version: 1, Weight: 100}}})
	wantCode(t, err, gust.EINVALID)
	_, err = r.SetAlias(ctx, "fn", gust.Alias{Name: "beta", Targets: []gust.AliasTarget{{Version: 1, Weight: 50}, {Version: 7, Weight: 50}}})
	wantCode(t, err, gust.ENOTFOUND)
	if !strings.Contains(gust.ErrorMessage(err), "version 7") {
		t.Fatalf("message %q does not name the missing version", gust.ErrorMessage(err))
	}
	if f, _ := r.Function(ctx, "fn"); len(f.Aliases) != 2 {
		t.Fatalf("failed SetAlias changed aliases: %+v", f.Aliases)
	}

	// Setting live moves Function.Live to the heavier target.
	split := gust.Alias{Name: gust.AliasLive, Targets: []gust.AliasTarget{{Version: 1, Weight: 70}, {Version: 2, Weight: 30}}}
	f, err = r.SetAlias(ctx, "fn", split)
	if err != nil {
		t.Fatal(err)
	}
	if f.Live != 1 || !aliasEqual(f.Aliases[gust.AliasLive], split) {
		t.Fatalf("after setting live: %+v", f)
	}

	f, err = r.DeleteAlias(ctx, "fn", "canary")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Aliases["canary"]; ok {
		t.Fatal("canary still there")
	}
	_, err = r.DeleteAlias(ctx, "fn", "canary")
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.DeleteAlias(ctx, "fn", gust.AliasLive)
	wantCode(t, err, gust.EINVALID)
	if f, _ := r.Function(ctx, "fn"); len(f.Aliases) != 1 || f.Live != 1 {
		t.Fatalf("final: %+v", f)
	}
}

func TestReadsAreCopies(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	if _, err := r.Deploy(ctx, "fn", gust.Spec{Env: map[string]string{"K": "v"}}, "", []byte("c")); err != nil {
		t.Fatal(err)
	}
	f, _ := r.Function(ctx, "fn")
	f.Aliases[gust.AliasLive].Targets[0] = gust.AliasTarget{Version: 9, Weight: 100}
	f.Aliases["x"] = gust.Alias{}
	v, _ := r.Version(ctx, "fn", 1)
	v.Spec.Env["K"] = "changed"
	f, _ = r.Function(ctx, "fn")
	v, _ = r.Version(ctx, "fn", 1)
	if len(f.Aliases) != 1 || f.Aliases[gust.AliasLive].Targets[0].Version != 1 || v.Spec.Env["K"] != "v" {
		t.Fatalf("a caller's change reached the cache: %+v %+v", f, v.Spec.Env)
	}
}

func TestDelete(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	own, shared := []byte("only a uses this"), []byte("a and b use this")
	for _, d := range []struct {
		fn   string
		code []byte
	}{{"a", own}, {"a", shared}, {"b", shared}} {
		if _, err := r.Deploy(ctx, d.fn, gust.Spec{}, "", d.code); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.SetAlias(ctx, "a", gust.Alias{Name: "beta", Targets: []gust.AliasTarget{{Version: 1, Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	_, err := r.Function(ctx, "a")
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.Versions(ctx, "a")
	wantCode(t, err, gust.ENOTFOUND)
	_, err = r.Version(ctx, "a", 2)
	wantCode(t, err, gust.ENOTFOUND)
	if keys := kvKeys(t, r); !slices.Equal(keys, []string{"fn.b", "ver.b.1"}) {
		t.Fatalf("keys after delete: %v", keys)
	}
	_, err = r.Code(ctx, digestOf(own))
	wantCode(t, err, gust.ENOTFOUND)
	if b, err := r.Code(ctx, digestOf(shared)); err != nil || string(b) != string(shared) {
		t.Fatalf("code still used by b: %q, %v", b, err)
	}
	if n := countObjects(t, r); n != 1 {
		t.Fatalf("%d objects, want 1", n)
	}
	wantCode(t, r.Delete(ctx, "a"), gust.ENOTFOUND)
	if fs, _ := r.Functions(ctx); len(fs) != 1 || fs[0].Name != "b" {
		t.Fatalf("Functions = %+v", fs)
	}

	// The name is free again: a new function starts from version 1.
	v, err := r.Deploy(ctx, "a", gust.Spec{}, "", own)
	if err != nil {
		t.Fatal(err)
	}
	if v.Number != 1 {
		t.Fatalf("redeploy after delete got version %d", v.Number)
	}
	if vs, _ := r.Versions(ctx, "a"); len(vs) != 1 {
		t.Fatalf("redeployed function has %d versions", len(vs))
	}
	if _, err := r.Code(ctx, digestOf(own)); err != nil {
		t.Fatal(err)
	}
}

// A Delete that removes code races a Deploy of another function bringing
// the same code; whatever the interleaving, the deployed version's code must
// be there afterwards.
func TestDeleteRacingDeployKeepsCode(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	for i := range 8 {
		code := fmt.Appendf(nil, "round %d", i)
		old, fresh := fmt.Sprintf("old-%d", i), fmt.Sprintf("new-%d", i)
		if _, err := r.Deploy(ctx, old, gust.Spec{}, "", code); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var delErr, depErr error
		wg.Go(func() { delErr = r.Delete(ctx, old) })
		wg.Go(func() { _, depErr = r.Deploy(ctx, fresh, gust.Spec{}, "", code) })
		wg.Wait()
		if delErr != nil || depErr != nil {
			t.Fatalf("round %d: delete %v, deploy %v", i, delErr, depErr)
		}
		if b, err := r.Code(ctx, digestOf(code)); err != nil || string(b) != string(code) {
			t.Fatalf("round %d: code of %s lost: %v", i, fresh, err)
		}
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	b := startBroker(t, dir)
	r := open(t, b.JetStream(), Config{})
	code := []byte("persist me")
	for range 2 {
		if _, err := r.Deploy(ctx, "keep", gust.Spec{MemoryMB: 64}, "wagi", code); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.SetAlias(ctx, "keep", gust.Alias{Name: "beta", Targets: []gust.AliasTarget{{Version: 1, Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rollback(ctx, "keep", 1); err != nil {
		t.Fatal(err)
	}
	before, _ := r.Function(ctx, "keep")
	beforeVs, _ := r.Versions(ctx, "keep")
	r.Close()
	b.Close()

	b = startBroker(t, dir)
	defer b.Close()
	r = open(t, b.JetStream(), Config{})
	defer r.Close()
	after, err := r.Function(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	afterVs, err := r.Versions(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if js(t, before) != js(t, after) || js(t, beforeVs) != js(t, afterVs) {
		t.Fatalf("after restart:\n%s\n%s\nwant\n%s\n%s", js(t, after), js(t, afterVs), js(t, before), js(t, beforeVs))
	}
	if got, err := r.Code(ctx, afterVs[0].CodeDigest); err != nil || string(got) != string(code) {
		t.Fatalf("code after restart: %q, %v", got, err)
	}
	v, err := r.Deploy(ctx, "keep", gust.Spec{}, "", code)
	if err != nil || v.Number != 3 {
		t.Fatalf("deploy after restart: %+v, %v", v, err)
	}
}

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSecondRegistrySeesChanges(t *testing.T) {
	ctx := testCtx(t)
	r1, b := setup(t, Config{})

	// The second registry is another node: its own connection, over TCP.
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js2, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r2 := open(t, js2, Config{})
	defer r2.Close()

	var mu sync.Mutex
	var changed []string
	cancel := r2.OnChange(func(name string) {
		mu.Lock()
		changed = append(changed, name)
		mu.Unlock()
	})
	defer cancel()

	if _, err := r1.Deploy(ctx, "shared", gust.Spec{}, "", []byte("c1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "second registry sees the deploy", func() bool {
		f, err := r2.Function(ctx, "shared")
		if err != nil {
			return false
		}
		v, err := r2.Version(ctx, "shared", f.Live)
		return err == nil && v.Number == 1
	})
	mu.Lock()
	sawName := slices.Contains(changed, "shared")
	mu.Unlock()
	if !sawName {
		t.Fatal("OnChange was not called for the deployed function")
	}

	// And a write on the second node is visible to the first.
	if _, err := r2.Deploy(ctx, "shared", gust.Spec{}, "", []byte("c2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "first registry sees the second node's deploy", func() bool {
		f, err := r1.Function(ctx, "shared")
		return err == nil && f.Live == 2
	})

	if err := r1.Delete(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "second registry sees the delete", func() bool {
		_, err := r2.Function(ctx, "shared")
		_, verr := r2.Version(ctx, "shared", 1)
		return gust.ErrorCode(err) == gust.ENOTFOUND && gust.ErrorCode(verr) == gust.ENOTFOUND
	})
}

func TestOnChangeLocalAndCancel(t *testing.T) {
	ctx := testCtx(t)
	r, _ := setup(t, Config{})
	var mu sync.Mutex
	count := 0
	cancel := r.OnChange(func(name string) {
		if name == "fn" {
			mu.Lock()
			count++
			mu.Unlock()
		}
	})
	if _, err := r.Deploy(ctx, "fn", gust.Spec{}, "", []byte("x")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := count
	mu.Unlock()
	if got == 0 {
		t.Fatal("OnChange not called by the writer's own deploy")
	}
	cancel()
	if _, err := r.Rollback(ctx, "fn", 1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if count != got {
		t.Fatalf("OnChange called after cancel: %d -> %d", got, count)
	}
}

func TestCacheIgnoresOlderEvents(t *testing.T) {
	c := newCache(quietLogger())
	put := func(rev uint64, live int) bool {
		f := gust.Function{Name: "f", Live: live, LatestVersion: live}
		b, _ := json.Marshal(f)
		_, changed := c.apply("fn.f", rev, false, b)
		return changed
	}
	if !put(5, 2) {
		t.Fatal("first put not applied")
	}
	if put(3, 1) || put(5, 1) {
		t.Fatal("older or repeated revision applied")
	}
	if f := c.view("f"); f == nil || f.Live != 2 {
		t.Fatalf("function = %+v", f)
	}
	if _, changed := c.apply("fn.f", 4, true, nil); changed {
		t.Fatal("older delete applied")
	}
	if _, changed := c.apply("fn.f", 6, true, nil); !changed || c.view("f") != nil {
		t.Fatal("newer delete not applied")
	}
	if put(5, 3) {
		t.Fatal("put older than the delete applied")
	}
	if _, changed := c.apply("other.key", 9, false, []byte("{}")); changed {
		t.Fatal("foreign key applied")
	}
}

func TestParseKey(t *testing.T) {
	cases := []struct {
		key  string
		name string
		n    int
		ok   bool
	}{
		{"fn.hello", "hello", 0, true},
		{"ver.hello.12", "hello", 12, true},
		{"ver.hello.0", "", 0, false},
		{"ver.hello", "", 0, false},
		{"ver.hello.x", "", 0, false},
		{"fn.", "", 0, false},
		{"other", "", 0, false},
	}
	for _, c := range cases {
		name, n, ok := parseKey(c.key)
		if name != c.name || n != c.n || ok != c.ok {
			t.Errorf("parseKey(%q) = %q, %d, %v", c.key, name, n, ok)
		}
	}
}
