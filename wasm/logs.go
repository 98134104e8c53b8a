package wasm

import (
	"bytes"

	"github.com/gustfaas/gust"
)

// tailSize bounds what a log writer keeps of the current call's output to
// explain a crash.
const tailSize = 2048

// maxPending bounds a partial line held back waiting for its newline.
const maxPending = 4096

// logWriter is one stream of one instance. The instance sets InvocationID
// before each call; a guest only writes while it is being called, on the
// caller's goroutine, so no lock is needed.
//
// It hands the sink whole lines: Go's runtime writes a crash report a few
// bytes at a time, and a sink that stores each write as an entry would show
// it in pieces. What is left at the end of a call is flushed then. As with
// io.Writer, the sink must not keep the slice it is given.
type logWriter struct {
	gust.LogWriter
	keepTail bool
	tail     []byte
	pending  []byte
}

func newLogWriter(m *module, stream string, keepTail bool) *logWriter {
	return &logWriter{
		LogWriter: gust.LogWriter{Sink: m.logs, Function: m.function, Version: m.version, Stream: stream},
		keepTail:  keepTail,
	}
}

// begin starts a new call: logs are tagged with id and the tail is reset.
func (w *logWriter) begin(id string) {
	w.flush()
	w.InvocationID = id
	w.tail = w.tail[:0]
}

// flush hands the sink a partial last line.
func (w *logWriter) flush() {
	if len(w.pending) > 0 {
		w.LogWriter.Write(w.pending)
		w.pending = w.pending[:0]
	}
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.keepTail {
		if len(p) >= tailSize {
			w.tail = append(w.tail[:0], p[len(p)-tailSize:]...)
		} else {
			if over := len(w.tail) + len(p) - tailSize; over > 0 {
				w.tail = append(w.tail[:0], w.tail[over:]...)
			}
			w.tail = append(w.tail, p...)
		}
	}
	n := len(p)
	if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
		if len(w.pending) > 0 {
			w.pending = append(w.pending, p[:i+1]...)
			w.LogWriter.Write(w.pending)
			w.pending = w.pending[:0]
		} else {
			w.LogWriter.Write(p[:i+1])
		}
		p = p[i+1:]
	}
	w.pending = append(w.pending, p...)
	if len(w.pending) >= maxPending {
		w.flush()
	}
	return n, nil
}

// crashLine returns the line of the tail that explains a crash: a Go panic
// or fatal error, or else the last non-empty line. Nil-safe.
func (w *logWriter) crashLine() string {
	if w == nil || len(w.tail) == 0 {
		return ""
	}
	lines := bytes.Split(w.tail, []byte("\n"))
	for _, l := range lines {
		l = bytes.TrimSpace(l)
		if bytes.HasPrefix(l, []byte("panic: ")) || bytes.HasPrefix(l, []byte("fatal error: ")) {
			return string(l)
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := bytes.TrimSpace(lines[i]); len(l) > 0 {
			if len(l) > 200 {
				l = l[:200]
			}
			return string(l)
		}
	}
	return ""
}
