package main

import (
	"sync"
	"time"
)

// openLoopThreads is the portable engine: a goroutine per connection,
// each sleeping until its next request is due (sleepUntil) and blocking
// on its answer. Each request costs the generator a sleep, a wake-up of
// its thread and a hand-off through Go's network poller: on a 2-core VM
// about 65 µs of CPU per request, taken from the cores the server under
// test runs on, so a server that needs more CPU suffers more from it (see
// openLoopEpoll).
func openLoopThreads(t *target, rate float64, dur time.Duration, conns int, timeout time.Duration) (RateResult, error) {
	n := int(rate * dur.Seconds())
	interval := float64(time.Second) / rate
	s := newSamples(n)
	lat, lag, svc, codes := s.lat, s.lag, s.svc, s.codes
	start := time.Now().Add(10 * time.Millisecond)
	var wg sync.WaitGroup
	for c := range min(conns, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cn *httpConn
			defer func() {
				if cn != nil {
					cn.close()
				}
			}()
			for i := c; i < n; i += conns {
				due := start.Add(time.Duration(float64(i) * interval))
				sleepUntil(due)
				if cn == nil {
					var err error
					if cn, err = t.dial(); err != nil {
						lat[i] = time.Since(due)
						continue
					}
				}
				sent := time.Now()
				lag[i] = sent.Sub(due)
				code, keep, err := cn.get(timeout)
				lat[i] = time.Since(due)
				svc[i] = lat[i] - lag[i]
				if err != nil {
					cn.close()
					cn = nil
					continue
				}
				codes[i] = code
				if !keep {
					cn.close()
					cn = nil
				}
			}
		}()
	}
	wg.Wait()
	return s.result(t, rate, dur, conns, time.Since(start)), nil
}
