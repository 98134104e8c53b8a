package wasm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gustfaas/gust"
)

// BuildGo compiles the Go function in dir to a gust reactor at out:
// `go build -buildmode=c-shared` for GOOS=wasip1 GOARCH=wasm. Errors carry
// go's output; a failed compile is EINVALID.
func BuildGo(ctx context.Context, dir, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return gust.WrapError(gust.EINVALID, err, "the go command is needed to build a Go function and is not on PATH")
	}
	outAbs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("build %s: output path %s: %w", dir, out, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", outAbs, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("build %s: %w", dir, ctx.Err())
		}
		msg := strings.TrimSpace(output.String())
		if msg == "" {
			msg = err.Error()
		}
		return gust.WrapError(gust.EINVALID, err, "go build of %s failed:\n%s", dir, msg)
	}
	return nil
}
