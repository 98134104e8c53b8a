package wasm_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// snapGuest keeps state between warm calls, builds state in init that a
// restored instance must find, gives itself an id that must differ per
// instance (through OnRestore), and reports what its random sources say.
const snapGuest = `package main

import (
	crand "crypto/rand"
	"fmt"
	mrand "math/rand"
	"math/rand/v2"
	"strings"

	"github.com/gustfaas/gust/sdk/lean"
)

var (
	table    []int
	id       string
	calls    int
	restored int
)

func init() {
	for i := 0; i < 10000; i++ {
		table = append(table, i*i)
	}
	id = crand.Text()
	lean.OnRestore(func() {
		restored++
		id = crand.Text()
	})
	lean.HandleFunc(func(r *lean.Request) *lean.Response {
		calls++
		var b strings.Builder
		fmt.Fprintf(&b, "calls=%d table=%d restored=%d id=%s\n", calls, table[9999], restored, id)
		if r.Path == "/rand" {
			m := map[int]bool{}
			for i := 0; i < 16; i++ {
				m[i] = true
			}
			order := ""
			for k := range m {
				order += fmt.Sprint(k, ",")
			}
			fmt.Fprintf(&b, "v2=%d v1=%d crypto=%s map=%s\n", rand.Uint64(), mrand.Int63(), crand.Text(), order)
		}
		return lean.Text(200, b.String())
	})
}

func main() {}
`

// goroutineGuest leaves a goroutine running after init, which vetoes a
// snapshot.
const goroutineGuest = `package main

import (
	"time"

	"github.com/gustfaas/gust/sdk/lean"
)

func init() {
	go func() {
		for {
			time.Sleep(time.Hour)
		}
	}()
	lean.HandleFunc(func(r *lean.Request) *lean.Response { return lean.Text(200, "ok\n") })
}

func main() {}
`

// logBuffer is a slog handler's writer that tests can search.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newSnapDriver(t testing.TB, dir string) (*wasm.Driver, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	d, err := wasm.New(wasm.Config{
		CacheDir:    wasmtest.CacheDir(t),
		SnapshotDir: dir,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d, logs
}

type snapshotted interface {
	Snapshotted() bool
	SnapshotState() string
}

func fields(t testing.TB, resp *gust.Response) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range strings.Fields(string(resp.Body)) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("bad field %q in %q", f, resp.Body)
		}
		out[k] = v
	}
	return out
}

func TestSnapshotRestoresState(t *testing.T) {
	d, _ := newSnapDriver(t, t.TempDir())
	m := load(t, d, wasmtest.GoGuest(t, snapGuest), gust.Spec{}, nil)
	s := m.(snapshotted)
	if s.Snapshotted() || s.SnapshotState() != "pending" {
		t.Fatalf("before the first instance: %v %q", s.Snapshotted(), s.SnapshotState())
	}
	first := start(t, m)
	if !s.Snapshotted() || s.SnapshotState() != "ready" {
		t.Fatalf("after the first instance: %v %q", s.Snapshotted(), s.SnapshotState())
	}
	a, b := start(t, m), start(t, m)

	seen := map[string]string{}
	for name, inst := range map[string]gust.Instance{"first": first, "a": a, "b": b} {
		wantRestored := "1"
		if name == "first" {
			wantRestored = "0"
		}
		for call := 1; call <= 3; call++ {
			f := fields(t, invoke(t, inst, get("/", "")))
			if f["calls"] != string(rune('0'+call)) || f["table"] != "99980001" || f["restored"] != wantRestored {
				t.Fatalf("%s call %d: %v", name, call, f)
			}
			if call == 1 {
				if other, dup := seen[f["id"]]; dup {
					t.Fatalf("%s has the id of %s: %s", name, other, f["id"])
				}
				seen[f["id"]] = name
			}
		}
	}

	// Two restored instances do not share random state: not crypto/rand,
	// and not the Go runtime's generator behind math/rand and maps either.
	ra, rb := fields(t, invoke(t, a, get("/rand", ""))), fields(t, invoke(t, b, get("/rand", "")))
	for _, k := range []string{"v2", "v1", "crypto"} {
		if ra[k] == rb[k] {
			t.Errorf("restored instances share %s: %s", k, ra[k])
		}
	}
	t.Logf("map order a=%s b=%s", ra["map"], rb["map"])
}

func TestSnapshotWarmStateLikeNormalStart(t *testing.T) {
	d, _ := newSnapDriver(t, t.TempDir())
	path := wasmtest.GoGuest(t, misbehave)
	off := false
	run := func(spec gust.Spec) []string {
		m := load(t, d, path, spec, nil)
		start(t, m) // the captured instance, when snapshots are on
		inst := start(t, m)
		var out []string
		for i := 0; i < 3; i++ {
			out = append(out, string(invoke(t, inst, get("/", "")).Body))
		}
		resp := invoke(t, inst, &gust.Request{Method: "POST", Path: "/echo", Body: []byte("x")})
		out = append(out, string(resp.Body), resp.Header.Get("Echo-Method"))
		return out
	}
	normal := run(gust.Spec{Snapshot: &off})
	restored := run(gust.Spec{})
	if strings.Join(normal, "|") != strings.Join(restored, "|") {
		t.Fatalf("restored instance answers %q, normal one %q", restored, normal)
	}
}

func TestSnapshotFallsBack(t *testing.T) {
	d, logs := newSnapDriver(t, t.TempDir())
	off := false
	tests := []struct {
		name  string
		path  string
		spec  gust.Spec
		state string
		log   string
	}{
		{"goroutines after init", wasmtest.GoGuest(t, goroutineGuest), gust.Spec{}, "unsupported: initialization left goroutines running", "initialization left goroutines running"},
		{"WAGI command", wasmtest.HelloC(t), gust.Spec{}, "off: a WAGI command module starts a fresh instance for every request", "a WAGI command module"},
		{"turned off", wasmtest.GoGuest(t, goroutineGuest), gust.Spec{Snapshot: &off}, "off: turned off for this version (snapshot: false in its spec, or it lists secrets", "snapshot: false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := load(t, d, tt.path, tt.spec, nil)
			for i := 0; i < 2; i++ {
				if resp := invoke(t, start(t, m), get("/", "")); resp.Status != 200 {
					t.Fatalf("instance %d: status %d", i, resp.Status)
				}
			}
			s := m.(snapshotted)
			if s.Snapshotted() || !strings.HasPrefix(s.SnapshotState(), tt.state) {
				t.Fatalf("snapshot %v %q, want %q", s.Snapshotted(), s.SnapshotState(), tt.state)
			}
			if !strings.Contains(logs.String(), tt.log) {
				t.Fatalf("no log line saying %q:\n%s", tt.log, logs.String())
			}
		})
	}
}

func TestSnapshotFileReusedAndCorruptOneRebuilt(t *testing.T) {
	dir := t.TempDir()
	path := wasmtest.GoGuest(t, snapGuest)
	loadNew := func() (gust.Module, *logBuffer) {
		d, logs := newSnapDriver(t, dir)
		return load(t, d, path, gust.Spec{}, nil), logs
	}
	m, _ := loadNew()
	start(t, m)
	files, _ := filepath.Glob(filepath.Join(dir, "gust-snapshots", "*", "*", "snapshot-*.snap"))
	if len(files) != 1 {
		t.Fatalf("snapshot files %v", files)
	}

	// A restart finds the snapshot: the first instance is restored.
	m, _ = loadNew()
	if !m.(snapshotted).Snapshotted() {
		t.Fatal("snapshot from the earlier driver not used")
	}
	if f := fields(t, invoke(t, start(t, m), get("/", ""))); f["restored"] != "1" {
		t.Fatalf("first instance after restart not restored: %v", f)
	}

	// One flipped byte of memory: rejected, rebuilt, and working again.
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-len(b)/3] ^= 0x40
	if err := os.WriteFile(files[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, logs := loadNew()
	if m.(snapshotted).Snapshotted() || !strings.Contains(logs.String(), "checksum mismatch") {
		t.Fatalf("corrupt snapshot trusted; logs:\n%s", logs.String())
	}
	if f := fields(t, invoke(t, start(t, m), get("/", ""))); f["restored"] != "0" || f["table"] != "99980001" {
		t.Fatalf("instance after corrupt snapshot: %v", f)
	}
	if !m.(snapshotted).Snapshotted() {
		t.Fatal("snapshot not rebuilt")
	}
	if f := fields(t, invoke(t, start(t, m), get("/", ""))); f["restored"] != "1" || f["table"] != "99980001" {
		t.Fatalf("instance from the rebuilt snapshot: %v", f)
	}
}

// TestSnapshotInstancesIsolated writes a marker into every page of one
// restored instance's memory, and into pages it grew, and checks that no
// other instance restored from the same snapshot sees any of it: not one
// restored beside it (its pages populated from the same file), and not one
// restored after it closed (which may reuse its memory).
func TestSnapshotInstancesIsolated(t *testing.T) {
	d, _ := newSnapDriver(t, t.TempDir())
	m := load(t, d, wasmtest.GoGuest(t, snapGuest), gust.Spec{}, nil)
	start(t, m) // captured
	// The first restored instance learns which pages a first call
	// touches; later restores populate those up front.
	invoke(t, start(t, m), get("/", ""))

	a, b := start(t, m), start(t, m)
	memA, memB := wasm.InstanceMemory(a), wasm.InstanceMemory(b)
	before, ok := memB.Read(0, memB.Size())
	if !ok {
		t.Fatal("read b's memory")
	}
	before = bytes.Clone(before)

	marker := []byte("ISOLATE\x01")
	const grown = 16
	if _, ok := memA.Grow(grown); !ok {
		t.Fatal("grow a's memory")
	}
	for off := uint32(0); off+4096 <= memA.Size(); off += 4096 {
		if !memA.Write(off+100, marker) {
			t.Fatalf("write a's memory at %#x", off)
		}
	}

	after, _ := memB.Read(0, memB.Size())
	if !bytes.Equal(before, after) {
		t.Fatal("b's memory changed when a wrote its own")
	}
	if bytes.Contains(after, marker) {
		t.Fatal("b sees a's marker")
	}
	if f := fields(t, invoke(t, b, get("/", ""))); f["calls"] != "1" || f["restored"] != "1" || f["table"] != "99980001" {
		t.Fatalf("b after a wrote its memory: %v", f)
	}

	// A closed instance's memory may serve the next restore: it must hold
	// the snapshot again, and zeros past it.
	a.Close(context.Background())
	c := start(t, m)
	memC := wasm.InstanceMemory(c)
	size := memC.Size()
	if _, ok := memC.Grow(grown); !ok {
		t.Fatal("grow c's memory")
	}
	all, _ := memC.Read(0, memC.Size())
	if bytes.Contains(all, marker) {
		t.Fatal("c sees the marker of a, closed before c started")
	}
	for i, v := range all[size:] {
		if v != 0 {
			t.Fatalf("c's grown memory is not zero at %#x", int(size)+i)
		}
	}
	if f := fields(t, invoke(t, c, get("/", ""))); f["calls"] != "1" || f["restored"] != "1" || f["table"] != "99980001" {
		t.Fatalf("c, restored after a closed: %v", f)
	}
}
