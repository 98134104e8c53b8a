package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// digestGuest answers the length and SHA-256 of the body it was given.
const digestGuest = `package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"github.com/gustfaas/gust/sdk"
)

func init() {
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(w, "%d %s", len(b), hex.EncodeToString(sum[:]))
	})
}

func main() {}
`

// A default node's embedded NATS takes messages of DefaultMaxPayload, so
// an async body of 2 MB (over NATS's own default of 1 MB) is accepted
// and reaches the function whole, as does one of the function's whole
// default limit of 6 MB; a body over that limit is refused by it.
func TestAsyncBodyOverOneMB(t *testing.T) {
	n, c := testNode(t, "", nil)
	deploy(t, c, "digest", gust.Spec{}, wasmtest.Code(t, wasmtest.GoGuest(t, digestGuest)))

	body := make([]byte, 2<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(body)
	want := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:]))

	r := do(t, "POST", n.URL()+"/async/digest", body)
	if r.status != http.StatusAccepted {
		t.Fatalf("async accept of 2 MB = %d %s", r.status, r.body)
	}
	st := waitInvocation(t, c, r.header.Get("X-Gust-Invocation-Id"))
	if st.Status != "succeeded" || st.Response == nil || st.Response.Status != 200 || st.Response.Body != want {
		t.Fatalf("async 2 MB: %+v, response %+v; want body %q", st, st.Response, want)
	}
	// The same body through /fn, for comparison.
	if r := do(t, "POST", n.URL()+"/fn/digest", body); r.status != 200 || string(r.body) != want {
		t.Fatalf("sync 2 MB = %d %.200s", r.status, r.body)
	}
	// The whole default limit fits, as on /fn.
	r = do(t, "POST", n.URL()+"/async/digest", make([]byte, gust.DefaultMaxBodyBytes))
	if r.status != http.StatusAccepted {
		t.Fatalf("async accept of 6 MB = %d %s", r.status, r.body)
	}
	if st := waitInvocation(t, c, r.header.Get("X-Gust-Invocation-Id")); st.Response == nil || !strings.HasPrefix(st.Response.Body, "6291456 ") {
		t.Fatalf("async 6 MB: %+v", st)
	}
	b := wantError(t, do(t, "POST", n.URL()+"/async/digest", make([]byte, gust.DefaultMaxBodyBytes+1)), 413, gust.ETOOLARGE)
	if !strings.Contains(b.Error, "6291456") {
		t.Fatalf("413 over the function's limit says %q", b.Error)
	}
}

// --max-payload is the embedded server's: out of range it is refused, and
// with an external NATS it is refused before anything is dialed.
func TestMaxPayloadRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		says string
	}{
		{Config{MaxPayload: 512 << 10}, "want 1MB"},
		{Config{MaxPayload: 65<<20 + 1}, "64MB"},
		{Config{MaxPayload: 8 << 20, NATSURL: "nats://127.0.0.1:18399"}, "max_payload in its servers' configuration"},
	} {
		tc.cfg.DataDir = t.TempDir()
		tc.cfg.Listen = "127.0.0.1:0"
		n, err := Start(context.Background(), tc.cfg)
		if err == nil {
			n.Close(context.Background())
			t.Fatalf("%+v: started", tc.cfg)
		}
		if gust.ErrorCode(err) != gust.EINVALID || !strings.Contains(err.Error(), tc.says) {
			t.Fatalf("MaxPayload %d: %v, want it to say %q", tc.cfg.MaxPayload, err, tc.says)
		}
	}
}
