package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// gustFlags are the flags of the modes that talk to a gust node's admin
// API as well as to its gateway.
type gustFlags struct {
	base      string
	tokenFile string
	fn        string
	query     string
}

func (g *gustFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.base, "gust", "http://127.0.0.1:18080", "base URL of the gust node")
	fs.StringVar(&g.tokenFile, "token-file", "", "file holding the admin token (default: $GUST_TOKEN)")
	fs.StringVar(&g.fn, "fn", "", "function name")
	fs.StringVar(&g.query, "query", "", "raw query string sent to the function, without '?'")
}

// admin returns a client of the node's admin API, after checking the flags.
func (g *gustFlags) admin() (*admin, error) {
	if g.fn == "" {
		return nil, fmt.Errorf("-fn is required")
	}
	token := os.Getenv("GUST_TOKEN")
	if g.tokenFile != "" {
		b, err := os.ReadFile(g.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, fmt.Errorf("no admin token: pass -token-file or set GUST_TOKEN")
	}
	return &admin{base: strings.TrimRight(g.base, "/"), token: token, fn: g.fn, c: newClient(2, 5*time.Second)}, nil
}

// fnURL is the gateway URL of the function, with the query.
func (g *gustFlags) fnURL() string {
	u := strings.TrimRight(g.base, "/") + "/fn/" + g.fn
	if g.query != "" {
		u += "?" + g.query
	}
	return u
}

type admin struct {
	base, token, fn string
	c               *http.Client
}

// poolState is what /v1/status says of a function's pools, summed over its
// versions.
type poolState struct {
	Idle, Busy, Starting, Waiting int
	ColdStarts, Throttled         int64
}

// Instances counts started instances (idle or busy), not those starting.
func (s poolState) Instances() int { return s.Idle + s.Busy }

func (a *admin) state(ctx context.Context) (poolState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/v1/status", nil)
	if err != nil {
		return poolState{}, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.c.Do(req)
	if err != nil {
		return poolState{}, fmt.Errorf("GET /v1/status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return poolState{}, fmt.Errorf("GET /v1/status: %s", resp.Status)
	}
	var st struct {
		Pools []struct {
			Function   string `json:"function"`
			Idle       int    `json:"idle"`
			Busy       int    `json:"busy"`
			Starting   int    `json:"starting"`
			Waiting    int    `json:"waiting"`
			ColdStarts int64  `json:"coldStarts"`
			Throttled  int64  `json:"throttled"`
		} `json:"pools"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return poolState{}, fmt.Errorf("decoding /v1/status: %w", err)
	}
	var s poolState
	for _, p := range st.Pools {
		if p.Function != a.fn {
			continue
		}
		s.Idle += p.Idle
		s.Busy += p.Busy
		s.Starting += p.Starting
		s.Waiting += p.Waiting
		s.ColdStarts += p.ColdStarts
		s.Throttled += p.Throttled
	}
	return s, nil
}

// waitFor polls the function's pool state every poll until ok says so, or
// fails after timeout.
func (a *admin) waitFor(ctx context.Context, what string, poll, timeout time.Duration, ok func(poolState) bool) (poolState, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := a.state(ctx)
		if err != nil {
			return s, err
		}
		if ok(s) {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("%s: not after %s (pool: %+v)", what, timeout, s)
		}
		time.Sleep(poll)
	}
}

// WaitResult is the output of the wait mode.
type WaitResult struct {
	Mode      string  `json:"mode"`
	Function  string  `json:"function"`
	Idle      int     `json:"idle"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

func runWait(args []string) (any, error) {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	var g gustFlags
	g.register(fs)
	idle := fs.Int("idle", 1, "wait until the function has at least this many idle instances")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := parse(fs, args, &g.base); err != nil {
		return nil, err
	}
	a, err := g.admin()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	s, err := a.waitFor(context.Background(), fmt.Sprintf("%d idle instances of %s", *idle, g.fn), 20*time.Millisecond, *timeout,
		func(s poolState) bool { return s.Idle >= *idle && s.Starting == 0 })
	if err != nil {
		return nil, err
	}
	el := time.Since(start)
	fmt.Fprintf(os.Stderr, "wait: %s has %d idle instances after %s\n", g.fn, s.Idle, el.Round(time.Millisecond))
	return WaitResult{Mode: "wait", Function: g.fn, Idle: s.Idle, ElapsedMS: float64(el) / 1e6}, nil
}
