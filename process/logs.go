package process

import (
	"bytes"
	"sync"
	"time"

	"github.com/gustfaas/gust"
)

// maxLine bounds a line held back waiting for its newline.
const maxLine = 8192

// tailSize bounds what is kept of stderr to explain a crash.
const tailSize = 4096

// outputs tags an instance's output with the invocation it belongs to.
// A process writes whenever it likes, so lines are attributed to the one
// invocation in flight, or to none ("") while the instance initializes,
// idles, or serves several invocations at once.
type outputs struct {
	sink     gust.LogSink
	function string
	version  int

	mu       sync.Mutex
	inflight map[string]int
	tail     []byte // end of stderr
	// last and lastEnd are the invocation that ended last and when: a
	// function's output travels a pipe while its answer travels a
	// socket, so a line may arrive just after the answer.
	last    string
	lastEnd time.Time
}

// lateOutput is how long after an invocation ends a line written while
// no other invocation runs is still its own.
const lateOutput = 250 * time.Millisecond

func newOutputs(sink gust.LogSink, function string, version int) *outputs {
	return &outputs{sink: sink, function: function, version: version, inflight: map[string]int{}}
}

func (o *outputs) begin(id string) {
	o.mu.Lock()
	o.inflight[id]++
	o.mu.Unlock()
}

func (o *outputs) end(id string) {
	o.mu.Lock()
	if o.inflight[id]--; o.inflight[id] <= 0 {
		delete(o.inflight, id)
	}
	if len(o.inflight) == 0 {
		o.last, o.lastEnd = id, time.Now()
	}
	o.mu.Unlock()
}

func (o *outputs) current() string {
	if len(o.inflight) == 1 {
		for id := range o.inflight {
			return id
		}
	}
	if len(o.inflight) == 0 && o.last != "" && time.Since(o.lastEnd) < lateOutput {
		return o.last
	}
	return ""
}

// lastLine returns the last non-empty line of stderr, to explain a crash.
func (o *outputs) lastLine() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := bytes.TrimRight(o.tail, "\n")
	if i := bytes.LastIndexByte(t, '\n'); i >= 0 {
		t = t[i+1:]
	}
	return string(t)
}

func (o *outputs) tailContains(s string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return bytes.Contains(o.tail, []byte(s))
}

// log hands one line to the sink outside the process's streams, such as a
// function error reported through the Runtime API.
func (o *outputs) log(id, stream string, line []byte) {
	if o.sink != nil {
		o.sink.FunctionLog(o.function, o.version, id, stream, line)
	}
}

// writer returns the io.Writer for one stream. exec copies each stream
// from its own goroutine, so a stream's writer is used by one goroutine.
func (o *outputs) writer(stream string) *streamWriter {
	return &streamWriter{o: o, stream: stream}
}

// streamWriter hands the sink whole lines.
type streamWriter struct {
	o       *outputs
	stream  string
	pending []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	o := w.o
	o.mu.Lock()
	id := o.current()
	if w.stream == "stderr" {
		o.tail = append(o.tail, p...)
		if len(o.tail) > tailSize {
			o.tail = append(o.tail[:0], o.tail[len(o.tail)-tailSize:]...)
		}
	}
	o.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.pending = append(w.pending, p...)
			if len(w.pending) >= maxLine {
				o.log(id, w.stream, w.pending)
				w.pending = w.pending[:0]
			}
			break
		}
		line := p[:i+1]
		if len(w.pending) > 0 {
			line = append(w.pending, line...)
			w.pending = w.pending[:0]
		}
		o.log(id, w.stream, line)
		p = p[i+1:]
	}
	return n, nil
}
