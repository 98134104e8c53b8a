package process

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gustfaas/gust"
)

// Defaults of the pre-warmed pool.
const (
	defaultPrewarm         = 1
	defaultPrewarmMemoryMB = 512
	// prewarmWorkerMB is a worker's memory limit until it is specialized:
	// room for an interpreter with its runtime client loaded (python ≈ 20
	// MB, node ≈ 45 MB) and no more.
	prewarmWorkerMB = 128
)

// prewarm keeps pre-warmed workers of the managed runtimes (python3,
// nodejs): sandboxed processes whose interpreter has started and loaded
// gust's runtime client, but no function. A cold start of a function of
// that runtime takes one and specializes it (see specializeWorker); the
// pool refills in the background. A worker is used once, for one
// instance of one function version, and never comes back to the pool.
//
// The life of a worker:
//
//  1. refill starts one (one at a time per runtime) while a version of
//     its runtime is loaded, the pool is short and the memory bound
//     allows; a failed start backs off, doubling up to 5s.
//  2. The worker is ready once its runtime client asks to be specialized;
//     it waits in ready, in its own cgroup held to prewarmWorkerMB.
//  3. take hands it to a cold start, which specializes it into an
//     instance: from then on it is that instance's, closed with it.
//  4. unuse (the last version of its runtime unloaded) and close discard
//     the workers still waiting.
type prewarm struct {
	d    *Driver
	size int // workers kept per runtime in use
	max  int // workers of all runtimes at once

	mu       sync.Mutex
	inUse    map[string]int // runtime → loaded versions
	ready    map[string][]*worker
	starting map[string]int // including failed starts backing off
	backoff  map[string]time.Duration
	total    int // ready and starting
	taken    int64
	closed   bool
	ctx      context.Context // canceled by close, to cut a start short
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func newPrewarm(d *Driver, size, memoryMB int) *prewarm {
	ctx, cancel := context.WithCancel(context.Background())
	return &prewarm{
		d: d, size: size, max: memoryMB / prewarmWorkerMB,
		inUse: map[string]int{}, ready: map[string][]*worker{}, starting: map[string]int{},
		backoff: map[string]time.Duration{}, ctx: ctx, cancel: cancel,
	}
}

func prewarmable(runtime string) bool {
	return runtime == gust.RuntimePython3 || runtime == gust.RuntimeNodejs
}

// use records a loaded version of runtime, and fills its pool.
func (pw *prewarm) use(runtime string) {
	if pw == nil || !prewarmable(runtime) {
		return
	}
	pw.mu.Lock()
	pw.inUse[runtime]++
	pw.mu.Unlock()
	pw.refill(runtime)
}

// unuse records an unloaded version of runtime; the runtime's workers go
// with its last version.
func (pw *prewarm) unuse(runtime string) {
	if pw == nil || !prewarmable(runtime) {
		return
	}
	pw.mu.Lock()
	pw.inUse[runtime]--
	var drop []*worker
	if pw.inUse[runtime] <= 0 {
		delete(pw.inUse, runtime)
		drop = pw.ready[runtime]
		delete(pw.ready, runtime)
		pw.total -= len(drop)
	}
	pw.mu.Unlock()
	for _, w := range drop {
		w.discard()
	}
}

// take returns a ready worker of runtime, or nil. The caller owns it.
func (pw *prewarm) take(runtime string) *worker {
	if pw == nil {
		return nil
	}
	var dead []*worker
	defer func() {
		for _, w := range dead {
			w.discard()
		}
	}()
	pw.mu.Lock()
	defer pw.mu.Unlock()
	for len(pw.ready[runtime]) > 0 {
		q := pw.ready[runtime]
		w := q[0]
		q[0] = nil
		pw.ready[runtime] = q[1:]
		pw.total--
		if !w.alive() {
			dead = append(dead, w)
			continue
		}
		pw.taken++
		return w
	}
	return nil
}

// refill starts a worker of runtime if its pool is short, one at a time.
func (pw *prewarm) refill(runtime string) {
	if pw == nil {
		return
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.closed || pw.inUse[runtime] == 0 || pw.starting[runtime] > 0 ||
		len(pw.ready[runtime]) >= pw.size || pw.total >= pw.max {
		return
	}
	pw.starting[runtime]++
	pw.total++
	pw.wg.Add(1)
	go pw.fill(runtime)
}

func (pw *prewarm) fill(runtime string) {
	defer pw.wg.Done()
	w, err := pw.d.startWorker(pw.ctx, runtime)
	pw.mu.Lock()
	if err != nil {
		wait := pw.backoff[runtime]
		if wait == 0 {
			wait = 100 * time.Millisecond
		}
		pw.backoff[runtime] = min(2*wait, 5*time.Second)
		closed := pw.closed
		pw.mu.Unlock()
		if !closed {
			pw.d.log.Warn("starting a pre-warmed worker failed", "runtime", runtime, "retry_in", wait, "err", err)
			select {
			case <-time.After(wait):
			case <-pw.ctx.Done():
			}
		}
		pw.mu.Lock()
		pw.starting[runtime]--
		pw.total--
		pw.mu.Unlock()
		pw.refill(runtime)
		return
	}
	pw.starting[runtime]--
	delete(pw.backoff, runtime)
	if pw.closed || pw.inUse[runtime] == 0 {
		pw.total--
		pw.mu.Unlock()
		w.discard()
		return
	}
	pw.ready[runtime] = append(pw.ready[runtime], w)
	pw.mu.Unlock()
	pw.refill(runtime)
}

// readyCount is how many workers of runtime wait in the pool.
func (pw *prewarm) readyCount(runtime string) int {
	if pw == nil {
		return 0
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return len(pw.ready[runtime])
}

// close discards every waiting worker and waits for the starts under way.
func (pw *prewarm) close() {
	if pw == nil {
		return
	}
	pw.mu.Lock()
	if pw.closed {
		pw.mu.Unlock()
		return
	}
	pw.closed = true
	pw.cancel()
	var drop []*worker
	for rt, ws := range pw.ready {
		drop = append(drop, ws...)
		delete(pw.ready, rt)
	}
	pw.total -= len(drop)
	pw.mu.Unlock()
	for _, w := range drop {
		w.discard()
	}
	pw.wg.Wait()
}

// PrewarmStats reports the pre-warmed pool, for metrics and tests.
type PrewarmStats struct {
	Ready map[string]int `json:"ready"` // workers waiting, by runtime
	Taken int64          `json:"taken"` // cold starts served by a worker
}

// PrewarmStats reports the pre-warmed pool.
func (d *Driver) PrewarmStats() PrewarmStats {
	st := PrewarmStats{Ready: map[string]int{}}
	pw := d.prewarm
	if pw == nil {
		return st
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	for rt, ws := range pw.ready {
		st.Ready[rt] = len(ws)
	}
	st.Taken = pw.taken
	return st
}

// prewarmEnv is a worker's whole environment until it is specialized:
// nothing of any function's.
func (d *Driver) prewarmEnv(runtime string) (map[string]string, []string, error) {
	_, rt, tmp := d.sb.paths("", d.runtimeDir, "")
	env := map[string]string{
		"PATH":                   sandboxPath,
		"HOME":                   tmp,
		"TMPDIR":                 tmp,
		"LANG":                   "C.UTF-8",
		"TZ":                     "UTC",
		"LAMBDA_RUNTIME_DIR":     rt,
		"AWS_LAMBDA_RUNTIME_API": fmt.Sprintf("127.0.0.1:%d", nsAPIPort),
		"GUST_PREWARMED":         "1",
	}
	switch runtime {
	case gust.RuntimePython3:
		env["PYTHONUNBUFFERED"] = "1"
		env["PYTHONDONTWRITEBYTECODE"] = "1"
		return env, []string{d.cfg.Python, rt + "/bootstrap.py"}, nil
	case gust.RuntimeNodejs:
		return env, []string{d.cfg.Node, rt + "/bootstrap.mjs"}, nil
	}
	return nil, nil, fmt.Errorf("runtime %s has no pre-warmed workers", runtime)
}
