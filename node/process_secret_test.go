package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
)

// A process-runtime function can list a secret: its value reaches the
// function's environment (as for wasm), and neither the deploy nor the
// first call refuses it as "both an env variable and a secret".
func TestProcessFunctionWithSecret(t *testing.T) {
	n, c := testNode(t, "", nil)
	ctx := context.Background()
	const value = "s3cret-value-for-a-python-function"
	if _, err := c.SetSecret(ctx, "DB_PASSWORD", []byte(value)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	handler := `import hashlib, os

def handler(event, context):
    v = os.environ.get("DB_PASSWORD")
    return {"statusCode": 200, "body": "present=%s sha256=%s" % (v is not None, hashlib.sha256((v or "").encode()).hexdigest())}
`
	if err := os.WriteFile(filepath.Join(dir, "handler.py"), []byte(handler), 0o644); err != nil {
		t.Fatal(err)
	}
	deploy(t, c, "py-secret", gust.Spec{Runtime: "python3", Handler: "handler.handler", Secrets: []string{"DB_PASSWORD"}}, zipExample(t, dir))
	r := do(t, "GET", n.URL()+"/fn/py-secret", nil)
	want := fmt.Sprintf("present=True sha256=%x", sha256.Sum256([]byte(value)))
	if r.status != 200 || !strings.Contains(string(r.body), want) {
		t.Fatalf("got %d %q, want 200 %q", r.status, r.body, want)
	}
}
