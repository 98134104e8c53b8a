package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/client"
)

func newLogsCmd(a *app) *cobra.Command {
	var (
		q      client.LogQuery
		since  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a function's log: its stdout, stderr and gust's events about its invocations",
		Example: `  gust logs hello --since 10m
  gust logs hello -f
  gust logs hello --invocation 0f9da94dea306c4ecbbf11d3d777b2d0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if since != "" {
				if q.Since, err = parseWhen("since", since, a.now()); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			body, err := c.Logs(cmd.Context(), args[0], q)
			if err != nil {
				return err
			}
			defer body.Close()
			return printLogs(cmd.OutOrStdout(), body, asJSON)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&q.Follow, "follow", "f", false, "keep printing new lines until interrupted")
	f.StringVar(&since, "since", "", "only lines newer than this: a duration back from now (10m) or a time")
	f.StringVar(&q.Invocation, "invocation", "", "only lines of this invocation id")
	f.IntVar(&q.Limit, "limit", 0, "most lines of the backlog to show (default 1000, newest kept)")
	f.BoolVar(&asJSON, "json", false, "print each line as the server's JSON")
	return cmd
}

func printLogs(w io.Writer, r io.Reader, asJSON bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if asJSON {
			fmt.Fprintln(w, sc.Text())
			continue
		}
		var e client.LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("server sent a malformed log line: %w", err)
		}
		inv := e.Invocation
		if len(inv) > 8 {
			inv = inv[:8]
		}
		if inv == "" {
			inv = "-"
		}
		fmt.Fprintf(w, "%s v%d %-8s %-6s %s\n", e.Time.Local().Format("2006-01-02T15:04:05.000"), e.Version, inv, e.Stream, e.Message)
	}
	return sc.Err()
}

func newInvocationsCmd(a *app) *cobra.Command {
	var (
		q     client.HistoryQuery
		since string
		out   string
	)
	cmd := &cobra.Command{
		Use:   "invocations [NAME]",
		Short: "List recent invocations: id, version, trigger, start, duration, billed ms, cold, status",
		Example: `  gust invocations hello
  gust invocations hello --status error --since 1h`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			if len(args) == 1 {
				q.Function = args[0]
			}
			var err error
			if since != "" {
				if q.Since, err = parseWhen("since", since, a.now()); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			recs, err := c.Invocations(cmd.Context(), q)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out == "json" {
				return printJSON(w, recs)
			}
			tw := newTable(w)
			fmt.Fprintln(tw, "ID\tFUNCTION\tVERSION\tTRIGGER\tSTART\tDURATION\tBILLED MS\tCOLD\tSTATUS")
			for _, r := range recs {
				cold := ""
				if r.Cold {
					cold = "cold"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Function, r.Version, r.Trigger,
					r.Start.Local().Format("15:04:05.000"), time.Duration(r.DurationUs)*time.Microsecond,
					r.BilledMs, cold, r.Status)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Status, "status", "", "only this status: ok, error, timeout, throttled or oom")
	f.StringVar(&since, "since", "", "only invocations newer than this (default 24h)")
	f.IntVar(&q.Limit, "limit", 0, "most invocations to list (default 100)")
	outputFlag(cmd, &out)
	return cmd
}
