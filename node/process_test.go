package node

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/process"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

// zipExample zips examples/DIR as `gust deploy` does with a directory.
func zipExample(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := process.ZipDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Functions written for AWS Lambda run unchanged through the gateway: a Go
// function on aws-lambda-go's lambda.Start, a Python and a Node handler.
func TestLambdaFunctionsThroughTheGateway(t *testing.T) {
	n, c := testNode(t, "", nil)
	root := wasmtest.Root()

	goDir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(goDir, "bootstrap"), ".")
	build.Dir = filepath.Join(root, "examples", "lambda-go")
	build.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/lambda-go: %v\n%s", err, out)
	}
	deploy(t, c, "lambda-go", gust.Spec{Runtime: "process", Protocol: "lambda", Env: map[string]string{"GREETING": "Hi"}}, zipExample(t, goDir))
	deploy(t, c, "python-hello", gust.Spec{Runtime: "python3", Handler: "handler.handler"}, zipExample(t, filepath.Join(root, "examples", "python-hello")))
	deploy(t, c, "node-hello", gust.Spec{Runtime: "nodejs", Handler: "index.handler"}, zipExample(t, filepath.Join(root, "examples", "node-hello")))

	for _, fn := range []string{"lambda-go", "python-hello", "node-hello"} {
		r := do(t, "POST", n.URL()+"/fn/"+fn+"/some/path?name=gust", []byte(`{"x":1}`))
		if r.status != 200 || !bytes.Contains(r.body, []byte("gust")) {
			t.Fatalf("%s: %d %q", fn, r.status, r.body)
		}
		if r.header.Get("X-Gust-Invocation-Id") == "" {
			t.Fatalf("%s: no invocation id", fn)
		}
	}
	// A handler that raises: Lambda's error shape in the log and a 502.
	r := do(t, "GET", n.URL()+"/fn/python-hello/fail", nil)
	wantError(t, r, 502, gust.EFUNCTION)
	if !strings.Contains(string(r.body), "asked to fail") && !strings.Contains(string(r.body), "ValueError") {
		t.Logf("502 body: %s", r.body)
	}
}
