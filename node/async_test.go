package node

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// The async path through a whole node: accepted (202 with an id) only once
// stored, run by a worker, its result readable at /v1/invocations/ID.
func TestAsyncThroughTheNode(t *testing.T) {
	n, c := testNode(t, "", nil)
	deploy(t, c, "hello", gust.Spec{}, wasmtest.Code(t, wasmtest.Hello(t)))
	r := do(t, "POST", n.URL()+"/async/hello?name=later", []byte("x"))
	if r.status != http.StatusAccepted {
		t.Fatalf("async accept = %d %s", r.status, r.body)
	}
	id := r.header.Get("X-Gust-Invocation-Id")
	if id == "" {
		t.Fatal("no invocation id")
	}
	wantError(t, do(t, "POST", n.URL()+"/async/nothere", nil), 404, gust.ENOTFOUND)
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.Invocation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == "succeeded" {
			b, _ := json.Marshal(st)
			if !json.Valid(b) {
				t.Fatal("bad status JSON")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("async invocation still %q", st.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
