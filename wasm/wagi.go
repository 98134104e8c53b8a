package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/gustfaas/gust"
)

// maxCGIOutput bounds what a WAGI module may write to stdout, so a runaway
// guest cannot exhaust the host's memory.
const maxCGIOutput = 32 << 20

// wagiInstance is a handle for a WASI command module. Every Invoke runs a
// fresh instance (CGI semantics), so this handle holds no guest state.
type wagiInstance struct {
	m    *module
	busy atomic.Bool
}

func (w *wagiInstance) Close(context.Context) error { return nil }

func (w *wagiInstance) Invoke(ctx context.Context, req *gust.Request) (*gust.Response, error) {
	if !w.busy.CompareAndSwap(false, true) {
		return nil, gust.Errorf(gust.EINTERNAL, "instance already in use")
	}
	defer w.busy.Store(false)
	m := w.m

	env := cgiEnv(m.function, req)
	if err := checkCGIEnv(env); err != nil {
		return nil, err
	}
	stdout := &limitedBuffer{max: maxCGIOutput}
	stderr := newLogWriter(m, "stderr", true)
	stderr.begin(req.ID)
	cfg := m.config(env...).
		WithStdin(bytes.NewReader(req.Body)).
		WithStdout(stdout).
		WithStderr(stderr)
	mod, err := m.rt.r.InstantiateModule(experimental.WithMemoryAllocator(m.withCall(ctx, req.ID), &m.memories), m.compiled, cfg)
	stderr.flush()
	if mod != nil {
		// A module that returns from main (or exits 0) is closed already;
		// Close is idempotent.
		defer mod.Close(context.WithoutCancel(ctx))
	}
	if stdout.overflow {
		// WASI turns the write error into an errno for the guest, which may
		// carry on or exit; either way the output is cut and unusable.
		return nil, gust.Errorf(gust.EFUNCTION, "function wrote more than %d bytes to stdout", maxCGIOutput)
	}
	if err != nil {
		var memSize uint64
		if mod != nil && mod.Memory() != nil {
			memSize = uint64(mod.Memory().Size())
		}
		return nil, m.callError(ctx, err, memSize, stderr, "")
	}
	resp, err := parseCGI(stdout.Bytes())
	if err != nil {
		return nil, gust.WrapError(gust.EFUNCTION, err, "function wrote malformed CGI output: %v", err)
	}
	return resp, nil
}

// cgiEnv returns the CGI/1.1 variables for req, as key, value pairs.
func cgiEnv(function string, req *gust.Request) []string {
	env := make([]string, 0, 2*(10+len(req.Header)))
	env = append(env,
		"REQUEST_METHOD", req.Method,
		"PATH_INFO", req.Path,
		// As in WAGI: the path as the client escaped it, so a command can
		// tell an escaped slash (%2F) from a separator.
		"X_RAW_PATH_INFO", (&url.URL{Path: req.Path, RawPath: req.RawPath}).EscapedPath(),
		"QUERY_STRING", req.Query,
		"CONTENT_TYPE", req.Header.Get("Content-Type"),
		"CONTENT_LENGTH", strconv.Itoa(len(req.Body)),
		"SCRIPT_NAME", "/fn/"+function,
		"SERVER_PROTOCOL", "HTTP/1.1",
		"GATEWAY_INTERFACE", "CGI/1.1",
		"X_GUST_INVOCATION_ID", req.ID,
	)
	if host := req.Header.Get("Host"); host != "" {
		env = append(env, "SERVER_NAME", host)
	}
	for k, vs := range req.Header {
		name := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if !cgiName(name) || name == "HTTP_PROXY" {
			// A name the environment cannot carry (a header may hold
			// '=' or '.') is left out, as net/http/cgi does. And as there,
			// a Proxy header never becomes HTTP_PROXY, which HTTP clients
			// read as their proxy ("httpoxy").
			continue
		}
		env = append(env, name, strings.Join(vs, ", "))
	}
	return env
}

// cgiName reports whether name is made of [A-Z0-9_] only.
func cgiName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkCGIEnv refuses a request that cannot become an environment: a NUL
// byte ends a C string, so a value cannot hold one (a path of %00 can).
// It is the caller's error, refused before the function runs.
func checkCGIEnv(env []string) error {
	for i := 0; i+1 < len(env); i += 2 {
		if strings.IndexByte(env[i+1], 0) >= 0 {
			return gust.Errorf(gust.EINVALID, "the request's %s holds a NUL byte, which a WAGI function's environment cannot carry", env[i])
		}
	}
	return nil
}

// parseCGI parses a CGI response: header lines, a blank line, the body.
func parseCGI(out []byte) (*gust.Response, error) {
	if len(out) == 0 {
		return nil, errors.New("no output (want headers, a blank line, then the body)")
	}
	resp := &gust.Response{Header: http.Header{}}
	rest := out
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, errors.New("no blank line after the headers")
		}
		line := rest[:i]
		rest = rest[i+1:]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("bad header line %q", truncate(line, 80))
		}
		key := http.CanonicalHeaderKey(string(name))
		val := string(bytes.TrimSpace(value))
		if key == "Status" {
			code, _, _ := strings.Cut(val, " ")
			n, err := strconv.Atoi(code)
			if err != nil || n < 100 || n > 999 {
				return nil, fmt.Errorf("bad Status header %q", val)
			}
			resp.Status = n
			continue
		}
		resp.Header.Add(key, val)
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
		if resp.Header.Get("Location") != "" {
			resp.Status = http.StatusFound
		}
	}
	if len(rest) > 0 {
		resp.Body = rest
	}
	return resp, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

var errOutputTooLarge = errors.New("output too large")

// limitedBuffer is a bytes.Buffer that refuses to grow past max.
type limitedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.overflow || b.Len()+len(p) > b.max {
		b.overflow = true
		return 0, errOutputTooLarge
	}
	return b.Buffer.Write(p)
}
