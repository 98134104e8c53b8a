package async

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// A version whose instance needs more memory than the node's whole budget
// (the harness's is 2048 MB) can never run here: /fn answers 400 invalid.
// An async accept of it used to answer 202, then run it 3 times and
// dead-letter it; it is refused now with the error /fn gives, and nothing
// is stored.
func TestAcceptRefusesAVersionTooBigForTheNode(t *testing.T) {
	h := newHarness(t, "", nil)
	v := h.deploy("big", gust.Spec{MemoryMB: 4096})
	ctx := context.Background()
	info, err := h.a.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := info.State.Msgs

	r := h.post("/async/big", []byte("x"), nil)
	var b httperr.Body
	if r.status != http.StatusBadRequest || json.Unmarshal(r.body, &b) != nil || b.Code != gust.EINVALID {
		t.Fatalf("POST /async/big = %d %s, want 400 invalid", r.status, r.body)
	}
	_, fnErr := h.inv.Invoke(ctx, v, &gust.Request{ID: "direct", Method: http.MethodPost, Path: "/"})
	if gust.ErrorCode(fnErr) != gust.EINVALID || b.Error != gust.ErrorMessage(fnErr) {
		t.Fatalf("async refused with %q; a call (/fn) is refused with %v", b.Error, fnErr)
	}
	if !strings.Contains(b.Error, "memory budget") {
		t.Fatalf("error %q does not name the memory budget", b.Error)
	}
	if info, err = h.a.stream.Info(ctx); err != nil || info.State.Msgs != before {
		t.Fatalf("events stored: %d, want %d (%v)", info.State.Msgs, before, err)
	}
	// A version that fits is accepted as before.
	h.deploy("fits", gust.Spec{MemoryMB: 2048})
	h.accept("/async/fits", []byte("ok"), nil)
}
