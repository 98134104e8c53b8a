package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/client"
)

func newDLQCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, redrive and purge a function's dead letters",
		Long: `An async invocation that fails every attempt (its retries, within its max
event age) is dead-lettered with its last error, as is a stream-trigger message
past its max deliveries. Redrive re-enqueues dead letters as new attempts,
under their old ids, once the function is fixed.`,
	}
	cmd.AddCommand(newDLQLsCmd(a), newDLQRedriveCmd(a), newDLQPurgeCmd(a))
	return cmd
}

func newDLQLsCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "ls NAME",
		Short: "List the dead letters of a function, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			dl, err := c.DeadLetters(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out == "json" {
				if dl == nil {
					dl = []client.DeadLetter{}
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"deadLetters": dl})
			}
			if len(dl) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no dead letters for %s\n", args[0])
				return nil
			}
			now := a.now()
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tTRIGGER\tREQUEST\tATTEMPTS\tACCEPTED\tDEAD\tERROR")
			for _, d := range dl {
				fmt.Fprintf(tw, "%s\t%s\t%s %s\t%d\t%s\t%s\t%s\n", d.ID, d.Trigger, d.Method, d.Path, d.Attempts,
					ago(d.AcceptedAt, now), ago(d.DeadAt, now), oneLine(d.Error, 80))
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &out)
	return cmd
}

func newDLQRedriveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "redrive NAME [ID...]",
		Short: "Re-enqueue dead letters (the given ids, or all) as new attempts",
		Example: `  gust dlq redrive hello
  gust dlq redrive hello 4f1c... 9ab2...`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Redrive(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "redrove %d dead letter%s of %s\n", len(res.Redriven), plural(len(res.Redriven)), args[0])
			for _, id := range res.Redriven {
				fmt.Fprintf(w, "  %s\n", id)
			}
			if len(res.Missing) > 0 {
				return fmt.Errorf("not dead letters of %s: %v", args[0], res.Missing)
			}
			return nil
		},
	}
}

func newDLQPurgeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "purge NAME",
		Short: "Delete every dead letter of a function",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			n, err := c.PurgeDeadLetters(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead letter%s of %s\n", n, plural(int(n)), args[0])
			return nil
		},
	}
}

func newInvocationCmd(a *app) *cobra.Command {
	var (
		out    string
		cancel bool
		wait   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "invocation ID",
		Short: "Show the status and result of an invocation (async or sync, by its X-Gust-Invocation-Id), or cancel a queued one",
		Example: `  gust invocation 4f1c0b...
  gust invocation 4f1c0b... --wait 30s
  gust invocation 4f1c0b... --cancel`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var s *client.InvocationStatus
			if cancel {
				s, err = c.CancelInvocation(ctx, args[0])
			} else {
				s, err = c.Invocation(ctx, args[0])
				deadline := time.Now().Add(wait)
				for err == nil && !s.Final() && time.Now().Before(deadline) {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(200 * time.Millisecond):
					}
					s, err = c.Invocation(ctx, args[0])
				}
			}
			if err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), s)
			}
			return printInvocation(cmd, s, a.now())
		},
	}
	cmd.Flags().BoolVar(&cancel, "cancel", false, "cancel the invocation if it has not started")
	cmd.Flags().DurationVar(&wait, "wait", 0, "poll until the invocation ends, at most this long")
	outputFlag(cmd, &out)
	return cmd
}

func printInvocation(cmd *cobra.Command, s *client.InvocationStatus, now time.Time) error {
	tw := newTable(cmd.OutOrStdout())
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	ver := ""
	if s.Version > 0 {
		ver = strconv.Itoa(s.Version)
	}
	row("id", s.ID)
	row("kind", s.Kind)
	row("function", s.Function)
	row("version", ver)
	row("trigger", s.Trigger)
	row("status", s.Status)
	if s.Kind == "sync" {
		if s.HTTPStatus > 0 {
			row("response", strconv.Itoa(s.HTTPStatus))
		}
		row("error", s.Error)
		row("code", s.Code)
		row("started", ago(s.AcceptedAt, now))
		row("duration", (time.Duration(s.DurationMs * float64(time.Millisecond))).Round(time.Microsecond).String())
		// A sync status without cold is a call no instance ran
		// (throttled, or none could be had).
		start := "not run"
		if s.Cold != nil {
			start = "warm"
			if *s.Cold {
				start = "cold"
			}
		}
		row("start", start)
		return tw.Flush()
	}
	row("attempts", strconv.Itoa(s.Attempts))
	row("error", s.Error)
	row("accepted", ago(s.AcceptedAt, now))
	if s.StartedAt != nil {
		row("started", ago(*s.StartedAt, now))
	}
	if s.FinishedAt != nil {
		row("finished", ago(*s.FinishedAt, now))
	}
	if s.NextAttemptAt != nil {
		row("next attempt", s.NextAttemptAt.Local().Format(time.RFC3339))
	}
	if r := s.Response; r != nil {
		row("response", strconv.Itoa(r.Status))
		body := r.Body
		if r.Encoding == "base64" {
			body = "(base64) " + body
		}
		if r.Truncated {
			body += fmt.Sprintf(" ... (truncated; %d bytes in all)", r.Size)
		}
		row("body", oneLine(body, 2000))
	}
	return tw.Flush()
}

// oneLine keeps a table row on one line.
func oneLine(s string, max int) string {
	b := []rune(s)
	for i, r := range b {
		if r == '\n' || r == '\r' || r == '\t' {
			b[i] = ' '
		}
	}
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
