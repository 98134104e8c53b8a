package node

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// `gust versions` must give the real reason a reactor's snapshots are off:
// a version that lists secrets never set snapshot: false, so a state
// saying the function turned them off would send its owner looking for a
// setting that is not there.
func TestSnapshotStateNamesSecrets(t *testing.T) {
	n, c := testNode(t, "", nil)
	ctx := context.Background()
	if _, err := c.SetSecret(ctx, "DB_PASSWORD", []byte("x")); err != nil {
		t.Fatal(err)
	}
	deploy(t, c, "hello", gust.Spec{Secrets: []string{"DB_PASSWORD"}}, wasmtest.Code(t, wasmtest.Hello(t)))
	if r := do(t, "GET", n.URL()+"/fn/hello", nil); r.status != http.StatusOK {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
	vs, err := c.Versions(ctx, "hello")
	if err != nil || len(vs) != 1 {
		t.Fatalf("versions: %v %v", vs, err)
	}
	st := vs[0].Snapshot
	if !strings.HasPrefix(st, "off: ") || !strings.Contains(st, "secrets") || strings.Contains(st, "turned off by the function") {
		t.Fatalf("snapshot state %q, want it off because the version lists secrets", st)
	}
}
