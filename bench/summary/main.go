// Command summary turns the results directory of one bench/run into the
// Markdown tables of BENCHMARKS.md: for each target its figure, the
// baseline measured in the same run, their ratio, the target and whether it
// was met, and the command that measured it.
//
//	go run ./bench/summary bench/results/20250101T000000Z
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: summary RESULTS_DIR")
		os.Exit(2)
	}
	s := &summary{dir: os.Args[1], w: bufio.NewWriter(os.Stdout)}
	err := s.write()
	if ferr := s.w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
}

// Params are the knobs of the run, written by bench/run.
type Params struct {
	Duration         int    `json:"duration_s"`
	Rounds           int    `json:"rounds"`
	ColdSamples      int    `json:"cold_samples"`
	Instances        int    `json:"instances"`
	Seq              int    `json:"seq"`
	BurstN           int    `json:"burst_n"`
	ClosedDur        string `json:"closed_duration"`
	RateDur          string `json:"rate_duration"`
	RateRounds       int    `json:"rate_rounds"` // 0 in runs before it was recorded: 2
	GoBenchTime      string `json:"gobench_time"`
	GoBenchInstances int    `json:"gobench_instances"`
	HalfRate         int    `json:"half_rate"`
	SaturatedRPS     int    `json:"saturated_rps"`
}

// Latencies mirrors bench/loadgen's output.
type Latencies struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

type cold struct {
	Samples  int       `json:"samples"`
	Rejected int       `json:"rejected"`
	Cold     Latencies `json:"cold"`
	Warm     Latencies `json:"warm"`
}

type closed struct {
	Clients   int            `json:"clients"`
	DurationS float64        `json:"duration_s"`
	Requests  int            `json:"requests"`
	Status    map[string]int `json:"status"`
	RPS       float64        `json:"rps"`
	Share429  float64        `json:"share_429"`
	Latency   Latencies      `json:"latency"`
	LatencyOK Latencies      `json:"latency_ok"`
}

type burst struct {
	Clients     int                `json:"clients"`
	Target      int                `json:"target"`
	Reached     bool               `json:"reached"`
	Instances   int                `json:"instances"`
	MaxStarting int                `json:"maxStarting"`
	TimeToMS    map[string]float64 `json:"time_to_ms"`
	ColdStarts  int64              `json:"coldStarts"`
	OneCold     cold               `json:"one_cold"`
	Load        closed             `json:"load"`
}

type rate struct {
	Engine      string    `json:"engine"` // "" before loadgen had engines: one goroutine per connection
	Rate        float64   `json:"rate"`
	Sent        int       `json:"sent"`
	OK          int       `json:"ok"`
	Non2xx      int       `json:"non2xx"`
	Errors      int       `json:"errors"`
	AchievedRPS float64   `json:"achieved_rps"`
	Latency     Latencies `json:"latency"`
	Service     Latencies `json:"service"`
	SendLag     Latencies `json:"send_lag"`
}

type mem struct {
	RSS0 float64 `json:"rss0_kb"`
	RSS1 float64 `json:"rss1_kb"`
	RSS2 float64 `json:"rss2_kb"`
	PSS0 float64 `json:"pss0_kb"`
	PSS1 float64 `json:"pss1_kb"`
	PSS2 float64 `json:"pss2_kb"`
	N    int     `json:"n"`
}

type summary struct {
	dir       string
	w         *bufio.Writer
	p         Params
	warmHello float64 // ns/op of BenchmarkReactorWarm
}

func (s *summary) readJSON(name string, v any) error {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (s *summary) printf(format string, args ...any) { fmt.Fprintf(s.w, format, args...) }

func (s *summary) write() error {
	if err := s.readJSON("params.json", &s.p); err != nil {
		return err
	}
	machine, err := os.ReadFile(filepath.Join(s.dir, "machine.txt"))
	if err != nil {
		return err
	}
	s.printf("## Run\n\n```\n%s```\n\n", machine)
	if err := s.interference(); err != nil {
		return err
	}
	gb, err := s.goBench()
	if err != nil {
		return err
	}
	for _, n := range sortedNames(gb) {
		if n == "BenchmarkReactorWarm" || strings.HasPrefix(n, "BenchmarkReactorWarm/") {
			s.warmHello = gb[n].NsPerOp
			break
		}
	}
	for _, part := range []func(map[string]goBenchResult) error{
		s.throughput, s.coldStart, s.memory, s.burst, s.throttle, s.latency, s.metering,
	} {
		if err := part(gb); err != nil {
			return err
		}
	}
	return nil
}

func met(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func ms(us float64) string { return fmt.Sprintf("%.2f ms", us/1000) }

// 1. Warm throughput.
func (s *summary) throughput(map[string]goBenchResult) error {
	rounds, err := s.rounds()
	if err != nil {
		return err
	}
	helloC, err := wrkRPS(filepath.Join(s.dir, "wrk-hello-c.txt"))
	if err != nil {
		return err
	}
	var ratios []float64
	var bare, on []float64
	for _, r := range rounds {
		ratios = append(ratios, r.on/r.bare)
		bare = append(bare, r.bare)
		on = append(on, r.on)
	}
	ratio := median(ratios)
	s.printf("### 1. Warm throughput of hello: gust vs bare net/http\n\n")
	s.printf("| figure | baseline | ratio | target | result |\n|---|---|---|---|---|\n")
	s.printf("| gust `/fn/hello`: %.0f req/s (median of %d rounds) | bare net/http: %.0f req/s | %.3f (median of per-round ratios) | ≥ 0.8 | %s |\n",
		median(on), len(rounds), median(bare), ratio, met(ratio >= 0.8))
	s.printf("| gust `/fn/hello-c` (WAGI, a new instance per request): %.0f req/s | bare net/http: %.0f req/s | %.3f | for information | — |\n\n",
		helloC, median(bare), helloC/median(bare))
	s.printf("Rounds (req/s), run alternately so drift hits both sides alike:\n\n| round | bare | gust | ratio |\n|---|---|---|---|\n")
	for _, r := range rounds {
		s.printf("| %d | %.0f | %.0f | %.3f |\n", r.n, r.bare, r.on, r.on/r.bare)
	}
	s.printf("\nCommand: `wrk -t2 -c32 -d%ds --latency URL` after a warm-up, URL in turn http://127.0.0.1:BARE/, http://127.0.0.1:GUST/fn/hello, http://127.0.0.1:GUST_OFF/fn/hello (target 7); then /fn/hello-c once.\n\n", s.p.Duration)
	return nil
}

// 2. Cold start.
func (s *summary) coldStart(gb map[string]goBenchResult) error {
	var c cold
	if err := s.readJSON("cold-hello.json", &c); err != nil {
		return err
	}
	var seqHello, seqC closed
	if err := s.readJSON("seq-hello.json", &seqHello); err != nil {
		return err
	}
	if err := s.readJSON("seq-hello-c.json", &seqC); err != nil {
		return err
	}
	s.printf("### 2. Cold start\n\n")
	s.printf("Through the gateway (end to end: HTTP, gateway, pool, instantiate + `_initialize`, first call), compilation cache warm:\n\n")
	s.printf("| figure | baseline | ratio | target | result |\n|---|---|---|---|---|\n")
	s.printf("| hello cold p50: %s (%d samples, %d rejected) | warm request right after, p50: %s | %.1f× | p50 ≤ 10 ms | %s |\n",
		ms(c.Cold.P50), c.Samples, c.Rejected, ms(c.Warm.P50), c.Cold.P50/c.Warm.P50, met(c.Cold.P50 <= 10000))
	s.printf("| hello cold p99: %s | warm p99: %s | %.1f× | — | — |\n", ms(c.Cold.P99), ms(c.Warm.P99), c.Cold.P99/c.Warm.P99)
	s.printf("| hello-c request (every one a fresh instance) p50: %s | warm hello request p50: %s | %.1f× | p50 ≤ 1 ms | %s |\n",
		ms(seqC.LatencyOK.P50), ms(seqHello.LatencyOK.P50), seqC.LatencyOK.P50/seqHello.LatencyOK.P50, met(seqC.LatencyOK.P50 <= 1000))
	s.printf("| hello-c p99: %s | warm hello p99: %s | %.1f× | — | — |\n\n",
		ms(seqC.LatencyOK.P99), ms(seqHello.LatencyOK.P99), seqC.LatencyOK.P99/seqHello.LatencyOK.P99)
	s.printf("Cold start added over a warm request: hello %s at p50; hello-c %s at p50.\n\n",
		ms(c.Cold.P50-c.Warm.P50), ms(seqC.LatencyOK.P50-seqHello.LatencyOK.P50))
	s.printf("Commands: `loadgen cold -fn cold-hello -samples %d` (hello deployed with `--idle-timeout 100ms`; each sample waits until /v1/status shows no instance, times one request, then a second one on the instance it started; a sample counts only if the pool's cold-start counter grew by exactly one); `loadgen closed -clients 1 -requests %d` on /fn/hello-c and on /fn/hello.\n\n",
		s.p.ColdSamples, s.p.Seq)

	s.printf("In process, the wasm package's Go benchmarks (`go test -run '^$' -bench . -skip BenchmarkIdleInstances -benchtime %s ./wasm/`), no HTTP. Each cold-start variant against the warm call of the same variant:\n\n", s.p.GoBenchTime)
	s.printf("| figure | baseline | ratio | target | result |\n|---|---|---|---|---|\n")
	rows := 0
	for _, name := range sortedNames(gb) {
		var target string
		var limitMs float64
		var base string
		switch {
		case strings.HasPrefix(name, "BenchmarkReactorColdStartLean"):
			base = strings.Replace(name, "ColdStartLean", "WarmLean", 1)
		case strings.HasPrefix(name, "BenchmarkReactorColdStart"):
			base, target, limitMs = strings.Replace(name, "ColdStart", "Warm", 1), "p50 ≤ 10 ms", 10
		case strings.HasPrefix(name, "BenchmarkWagiColdStart"):
			base, target, limitMs = firstWithPrefix(gb, "BenchmarkReactorWarmLean"), "p50 ≤ 1 ms", 1
		default:
			continue
		}
		f, b := gb[name], gb[base]
		p50 := f.Metrics["p50-ms"]
		fig := fmt.Sprintf("%s: %s/op", name, dur(f.NsPerOp))
		if p50 > 0 {
			fig += fmt.Sprintf(", p50 %.2f ms, p99 %.2f ms", p50, f.Metrics["p99-ms"])
		} else {
			p50 = f.NsPerOp / 1e6 // the mean stands in when the benchmark reports no percentiles
		}
		result, ratio, baseFig := "—", "—", "missing"
		if limitMs > 0 {
			result = met(p50 <= limitMs)
		} else {
			target = "—"
		}
		if b.NsPerOp > 0 {
			ratio = fmt.Sprintf("%.0f×", f.NsPerOp/b.NsPerOp)
			baseFig = fmt.Sprintf("%s: %s/op", base, dur(b.NsPerOp))
		}
		s.printf("| %s | %s | %s | %s | %s |\n", fig, baseFig, ratio, target, result)
		rows++
	}
	if rows == 0 {
		s.printf("| no cold-start benchmark in the run | | | | |\n")
	}
	s.printf("\nEvery wasm benchmark of the run:\n\n| benchmark | time/op | other metrics |\n|---|---|---|\n")
	for _, name := range sortedNames(gb) {
		r := gb[name]
		var other []string
		for _, k := range sortedKeys(r.Metrics) {
			if k != "ns/op" {
				other = append(other, fmt.Sprintf("%g %s", r.Metrics[k], k))
			}
		}
		s.printf("| %s | %s | %s |\n", name, dur(r.NsPerOp), strings.Join(other, ", "))
	}
	s.printf("\n")
	return s.guestAllocs()
}

// guestAllocs prints bench/guest_test.go's figures: what allocations cost
// inside a Go guest, against the ABI's floor.
func (s *summary) guestAllocs() error {
	f, err := os.Open(filepath.Join(s.dir, "gobench-guest.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	gb, err := parseGoBench(f)
	if err != nil {
		return err
	}
	s.printf("What a warm call costs, by the allocations the guest makes (`go test -run '^$' -bench GuestAllocs -benchtime %s ./bench/`: a Go reactor on the bare ABI, no SDK, n allocations of 64 bytes per call):\n\n", s.p.GoBenchTime)
	s.printf("| n | guest GC on | guest GOGC=off |\n|---|---|---|\n")
	for _, n := range []string{"0", "1", "10", "100"} {
		on, off := gb["BenchmarkGuestAllocs/gc=on/n="+n], gb["BenchmarkGuestAllocs/gc=off/n="+n]
		s.printf("| %s | %s | %s |\n", n, dur(on.NsPerOp), dur(off.NsPerOp))
	}
	base, hundred := gb["BenchmarkGuestAllocs/gc=on/n=0"], gb["BenchmarkGuestAllocs/gc=on/n=100"]
	if base.NsPerOp > 0 && hundred.NsPerOp > 0 {
		s.printf("\nOne allocation in a Go guest: %s (slope from n=0 to n=100), against a call floor of %s", dur((hundred.NsPerOp-base.NsPerOp)/100), dur(base.NsPerOp))
		if s.warmHello > 0 {
			s.printf("; the wasm package's warm call of the SDK hello costs %.0f such floors", s.warmHello/base.NsPerOp)
		}
		s.printf(".\n\n")
	}
	return nil
}

// 3. Memory per idle instance.
func (s *summary) memory(gb map[string]goBenchResult) error {
	var m mem
	if err := s.readJSON("mem.json", &m); err != nil {
		return err
	}
	n := float64(m.N)
	rssPer := (m.RSS2 - m.RSS1) / 1024 / n
	pssPer := (m.PSS2 - m.PSS1) / 1024 / n
	s.printf("### 3. Memory per idle warm hello instance\n\n")
	s.printf("| figure | baseline | ratio | target | result |\n|---|---|---|---|---|\n")
	s.printf("| gust process, Pss growth per instance: %.2f MiB (%d instances) | RSS growth per instance: %.2f MiB | %.2f | none given (DESIGN: ≈ 3 MiB for a Go guest) | — |\n",
		pssPer, m.N, rssPer, pssPer/rssPer)
	for _, name := range sortedNames(gb) {
		if !strings.HasPrefix(name, "BenchmarkIdleInstances") {
			continue
		}
		r := gb[name]
		s.printf("| %s: Pss %.0f KiB/instance, anonymous %.0f KiB/instance (%d instances) | gust process Pss growth: %.2f MiB/instance | %.2f | — | — |\n",
			name, r.Metrics["Pss-KiB/instance"], r.Metrics["anon-KiB/instance"], s.p.GoBenchInstances, pssPer, r.Metrics["Pss-KiB/instance"]/1024/pssPer)
	}
	s.printf("\nMemory of a fresh node (RSS / Pss): %.1f / %.1f MiB with one warm hello instance; %.1f / %.1f MiB after a second function with the same code and no instance (%+.1f / %+.1f MiB: what one more module costs; a negative figure is the garbage collector returning memory between readings); %.1f / %.1f MiB after a third with `--min-instances %d`. Per instance = (third − second) / %d. Each reading is the median of five, after 2 s of quiet. Pss counts a page that n mappings share as 1/n, RSS counts it n times: copy-on-write memory shared between instances shows in RSS only.\n\n",
		m.RSS0/1024, m.PSS0/1024, m.RSS1/1024, m.PSS1/1024, (m.RSS1-m.RSS0)/1024, (m.PSS1-m.PSS0)/1024, m.RSS2/1024, m.PSS2/1024, m.N, m.N)
	s.printf("Command: `gust deploy mem-n --runtime wasm --code examples/hello/hello.wasm --memory 64 --min-instances %d --max-concurrency %d --idle-timeout 1h`, then `loadgen wait -fn mem-n -idle %d`, VmRSS from /proc/PID/status and Pss from /proc/PID/smaps_rollup; `GUST_BENCH_INSTANCES=%d go test -run '^$' -bench BenchmarkIdleInstances -benchtime 1x ./wasm/`.\n\n", m.N, m.N, m.N, s.p.GoBenchInstances)
	return nil
}

// 4. Scale from zero under a burst.
func (s *summary) burst(map[string]goBenchResult) error {
	var b burst
	if err := s.readJSON("burst.json", &b); err != nil {
		return err
	}
	key := strconv.Itoa(b.Target)
	s.printf("### 4. Scale from 0 to %d instances under a burst\n\n", b.Target)
	s.printf("| figure | baseline | ratio | target | result |\n|---|---|---|---|---|\n")
	one := b.OneCold.Cold.P50
	if t, ok := b.TimeToMS[key]; ok {
		ideal := float64(b.Target) * (one / 1000) / 2
		s.printf("| time until %d instances had started: %.0f ms | one lone cold start of the same function, p50: %s | %.0f× | none given; for scale, %d cold starts spread over 2 cores ≈ %.0f ms | — |\n\n",
			b.Target, t, ms(one), t/(one/1000), b.Target, ideal)
	} else {
		s.printf("| %d instances not reached: %d after the burst | one lone cold start p50: %s | — | — | — |\n\n", b.Target, b.Instances, ms(one))
	}
	keys := make([]int, 0, len(b.TimeToMS))
	for k := range b.TimeToMS {
		n, _ := strconv.Atoi(k)
		keys = append(keys, n)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d after %.0f ms", k, b.TimeToMS[strconv.Itoa(k)]))
	}
	s.printf("Instances started: %s. At most %d instances were starting at once. The clients saw %d answers (%v), p50 %s, p99 %s.\n\n",
		strings.Join(parts, ", "), b.MaxStarting, b.Load.Requests, b.Load.Status, ms(b.Load.Latency.P50), ms(b.Load.Latency.P99))
	s.printf("Command: `loadgen burst -fn burst -query ms=50 -clients %d -instances %d` (bench/sleep deployed with `--memory 64 --max-concurrency %d --idle-timeout 300ms`; /v1/status polled every 5 ms; the baseline is %d lone cold starts with `?ms=0` just before).\n\n",
		b.Clients, b.Target, b.Target, b.OneCold.Samples)
	return nil
}

// 5. Throttling at twice max concurrency.
func (s *summary) throttle(map[string]goBenchResult) error {
	var at, twice closed
	if err := s.readJSON("throttle-10.json", &at); err != nil {
		return err
	}
	if err := s.readJSON("throttle-20.json", &twice); err != nil {
		return err
	}
	s.printf("### 5. Throttling when offered load is twice max concurrency\n\n")
	s.printf("| figure | baseline | ratio | target | result |\n|---|---|---|---|---|\n")
	s.printf("| 20 clients: %.2f%% of %d requests got 429 | 10 clients (= max concurrency): %.2f%% of %d | — | none given; a 50 ms function and a 100 ms queue timeout leave every waiter a slot in time, so 0%% is possible | — |\n\n",
		twice.Share429*100, twice.Requests, at.Share429*100, at.Requests)
	s.printf("Throughput: %.0f req/s with 20 clients vs %.0f req/s with 10 (the ceiling is 10 / 50 ms = 200 req/s). Latency of 200s: p50 %s, p99 %s with 20 clients; p50 %s, p99 %s with 10. Status counts: %v and %v.\n\n",
		twice.RPS, at.RPS, ms(twice.LatencyOK.P50), ms(twice.LatencyOK.P99), ms(at.LatencyOK.P50), ms(at.LatencyOK.P99), twice.Status, at.Status)
	s.printf("Command: `loadgen closed -url http://127.0.0.1:GUST/fn/throttle?ms=50 -clients 20 -duration %s` (and `-clients 10`), bench/sleep deployed with `--max-concurrency 10 --queue-timeout 100ms`.\n\n", s.p.ClosedDur)
	return nil
}

// 6. p99 added at half saturation: the median over rounds of each
// round's difference, both sides measured in the same round.
func (s *summary) latency(map[string]goBenchResult) error {
	type pair struct{ bare, gust rate }
	rounds := s.p.RateRounds
	if rounds == 0 {
		rounds = 2
	}
	var pairs []pair
	for r := 1; r <= rounds; r++ {
		suffix := ""
		if r > 1 {
			suffix = fmt.Sprintf("-%d", r)
		}
		var p pair
		if err := s.readJSON("rate-bare"+suffix+".json", &p.bare); err != nil {
			return err
		}
		if err := s.readJSON("rate-gust"+suffix+".json", &p.gust); err != nil {
			return err
		}
		pairs = append(pairs, p)
	}
	var added, addedSvc []float64
	for _, p := range pairs {
		added = append(added, p.gust.Latency.P99-p.bare.Latency.P99)
		addedSvc = append(addedSvc, p.gust.Service.P99-p.bare.Service.P99)
	}
	med := median(added)
	engine := pairs[0].gust.Engine
	if engine == "" {
		engine = "threads"
	}
	s.printf("### 6. Latency added by gust at half its saturation rate\n\n")
	order := "bare first in every round"
	if s.p.RateRounds > 0 {
		order = "the side that goes first alternating"
	}
	s.printf("Open loop at %d req/s (half of gust's best wrk figure in target 1, %d req/s), each latency counted from the request's scheduled send time; %d rounds, bare and gust alternately, %s; generator engine %q.\n\n", s.p.HalfRate, s.p.SaturatedRPS, len(pairs), order, engine)
	s.printf("| figure | baseline | ratio | target | result |\n|---|---|---|---|---|\n")
	for i, p := range pairs {
		s.printf("| round %d: gust p99 %s (p50 %s) | bare p99 %s (p50 %s) | %.2f×; added %s | ≤ 0.5 ms added at p99 | — |\n",
			i+1, ms(p.gust.Latency.P99), ms(p.gust.Latency.P50), ms(p.bare.Latency.P99), ms(p.bare.Latency.P50),
			p.gust.Latency.P99/p.bare.Latency.P99, ms(added[i]))
	}
	s.printf("| median added at p99: %s (mean %s) | | | ≤ 0.5 ms | %s |\n\n", ms(med), ms(mean(added)), met(med <= 500))
	s.printf("Service time alone (from the moment each request was written, so without the generator's late wake-ups and without the wait for a connection an earlier slow answer held):\n\n| round | gust p50 | gust p99 | bare p50 | bare p99 | added at p99 |\n|---|---|---|---|---|---|\n")
	for i, p := range pairs {
		s.printf("| %d | %s | %s | %s | %s | %s |\n", i+1, ms(p.gust.Service.P50), ms(p.gust.Service.P99),
			ms(p.bare.Service.P50), ms(p.bare.Service.P99), ms(addedSvc[i]))
	}
	s.printf("| median | | | | | %s |\n", ms(median(addedSvc)))
	s.printf("\nSent and answered: ")
	for i, p := range pairs {
		if i > 0 {
			s.printf("; ")
		}
		s.printf("round %d bare %d/%d ok (%d errors), gust %d/%d ok (%d errors); send lag p50/p99 bare %s/%s, gust %s/%s",
			i+1, p.bare.OK, p.bare.Sent, p.bare.Errors, p.gust.OK, p.gust.Sent, p.gust.Errors,
			ms(p.bare.SendLag.P50), ms(p.bare.SendLag.P99), ms(p.gust.SendLag.P50), ms(p.gust.SendLag.P99))
	}
	s.printf(".\n\nCommand: `loadgen rate -url URL -rate %d -conns 16 -duration %s -warmup 2s` against bare and /fn/hello, %d rounds, alternately.\n\n", s.p.HalfRate, s.p.RateDur, len(pairs))
	return nil
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

// 7. Metering on vs off.
func (s *summary) metering(map[string]goBenchResult) error {
	rounds, err := s.rounds()
	if err != nil {
		return err
	}
	var ratios, on, off []float64
	for _, r := range rounds {
		ratios = append(ratios, r.on/r.off)
		on = append(on, r.on)
		off = append(off, r.off)
	}
	ratio := median(ratios)
	s.printf("### 7. Throughput with metering and metrics on vs off\n\n")
	s.printf("| figure | baseline | ratio | target | result |\n|---|---|---|---|---|\n")
	s.printf("| metering on: %.0f req/s (median of %d rounds) | `--metering=false`: %.0f req/s | %.3f (median of per-round ratios) | ≥ 0.95 | %s |\n\n",
		median(on), len(rounds), median(off), ratio, met(ratio >= 0.95))
	s.printf("| round | on | off | ratio |\n|---|---|---|---|\n")
	for _, r := range rounds {
		s.printf("| %d | %.0f | %.0f | %.3f |\n", r.n, r.on, r.off, r.on/r.off)
	}
	s.printf("\nCommand: as target 1; two nodes run side by side, one started with `--metering=false`, hit in turn.\n\n")
	return nil
}

// interference prints how much of the machine other processes used
// during each part of the run.
func (s *summary) interference() error {
	b, err := os.ReadFile(filepath.Join(s.dir, "interference.tsv"))
	if err != nil {
		return err
	}
	s.printf("Other processes' share of the machine's CPU during each part (user and system ticks in /proc/stat minus those of bench/run, its children and its servers; 0 is a quiet machine):\n\n| part | seconds | others' CPU share |\n|---|---|---|\n")
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		share, _ := strconv.ParseFloat(f[2], 64)
		s.printf("| %s | %s | %.1f%% |\n", f[0], f[1], share*100)
	}
	s.printf("\n")
	return nil
}

type round struct {
	n             int
	bare, on, off float64
}

func (s *summary) rounds() ([]round, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "throughput.tsv"))
	if err != nil {
		return nil, err
	}
	var out []round
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("throughput.tsv: bad line %q", line)
		}
		var r round
		var err error
		if r.n, err = strconv.Atoi(f[0]); err != nil {
			return nil, fmt.Errorf("throughput.tsv: %w", err)
		}
		for i, p := range []*float64{&r.bare, &r.on, &r.off} {
			if *p, err = strconv.ParseFloat(f[i+1], 64); err != nil {
				return nil, fmt.Errorf("throughput.tsv: %w", err)
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("throughput.tsv: no rounds")
	}
	return out, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	c := slices.Clone(v)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

func wrkRPS(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("%s: no Requests/sec line", path)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

type goBenchResult struct {
	NsPerOp float64
	Metrics map[string]float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// goBench reads `go test -bench` output: name -> ns/op and other metrics.
func (s *summary) goBench() (map[string]goBenchResult, error) {
	f, err := os.Open(filepath.Join(s.dir, "gobench.txt"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseGoBench(f)
}

func parseGoBench(r io.Reader) (map[string]goBenchResult, error) {
	out := map[string]goBenchResult{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		res := goBenchResult{Metrics: map[string]float64{}}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			res.Metrics[fields[i+1]] = v
		}
		res.NsPerOp = res.Metrics["ns/op"]
		out[m[1]] = res
	}
	return out, sc.Err()
}

func sortedNames(m map[string]goBenchResult) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// firstWithPrefix returns the first benchmark, by name, that starts with
// prefix ("" if none): BenchmarkX or its first sub-benchmark.
func firstWithPrefix(m map[string]goBenchResult, prefix string) string {
	for _, n := range sortedNames(m) {
		if strings.HasPrefix(n, prefix) {
			return n
		}
	}
	return ""
}

func dur(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}
