// Command loadgen drives gust's end-to-end benchmarks (bench/run). Each mode
// prints one JSON object on stdout, for the script, and a line for people
// on stderr. Every mode is bounded in requests and in time, and talks to
// loopback addresses only.
//
//	loadgen rate   -url U -rate R -duration D   open loop at a fixed rate; latency from the intended send time
//	loadgen closed -url U -clients C -duration D  C clients back to back; counts by status
//	loadgen cold   -gust G -fn F -samples N     cold starts through the gateway, each followed by a warm call
//	loadgen burst  -gust G -fn F -clients C -instances N  time until the pool holds N instances
//	loadgen wait   -gust G -fn F -idle N        wait until the pool holds N idle instances
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	modes := map[string]func([]string) (any, error){
		"rate":   runRate,
		"closed": runClosed,
		"cold":   runCold,
		"burst":  runBurst,
		"wait":   runWait,
	}
	run, ok := modes[os.Args[1]]
	if !ok {
		usage()
	}
	res, err := run(os.Args[2:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen rate|closed|cold|burst|wait [flags]  (loadgen MODE -h for flags)")
	os.Exit(2)
}

// parse parses a mode's flags and checks that every URL given is on a
// loopback address: a benchmark never loads anything but this machine.
func parse(fs *flag.FlagSet, args []string, urls ...*string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, u := range urls {
		if err := checkLoopback(*u); err != nil {
			return err
		}
	}
	return nil
}

func checkLoopback(raw string) error {
	if raw == "" {
		return errors.New("a URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("URL %q is not on a loopback address: benchmarks only load this machine", raw)
	}
	return nil
}

// us converts a duration to microseconds, the unit of every latency in the
// JSON output.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
