package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/client"
)

func newStatusCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the node: memory budget and use, instances of each function by state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			return renderDocument(cmd.OutOrStdout(), raw)
		},
	}
	outputFlag(cmd, &out)
	return cmd
}

func newUsageCmd(a *app) *cobra.Command {
	var out, function, since, until string
	var hourly bool
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show usage: invocations, errors, cold starts, billed time, GB-seconds, cost",
		Example: `  gust usage --since 24h
  gust usage --function hello --since 2025-06-01 --until 2025-07-01 --hourly`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			now := a.now()
			q := client.UsageQuery{Function: function}
			var err error
			if q.Since, err = parseWhen("since", since, now); err != nil {
				return err
			}
			if q.Until, err = parseWhen("until", until, now); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.Usage(cmd.Context(), q)
			if err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			if hourly {
				return renderDocument(cmd.OutOrStdout(), raw)
			}
			// The hourly rows are one line per function per hour: too many
			// to read by default, and the totals summarize them.
			return renderDocument(cmd.OutOrStdout(), raw, "rows")
		},
	}
	f := cmd.Flags()
	f.BoolVar(&hourly, "hourly", false, "also show usage per function per hour")
	f.StringVar(&function, "function", "", "only this function")
	f.StringVar(&since, "since", "", "start: a duration back from now (24h) or a time (RFC 3339 or 2006-01-02)")
	f.StringVar(&until, "until", "", "end: a duration back from now or a time (default now)")
	outputFlag(cmd, &out)
	return cmd
}

// parseWhen reads a point in time as a duration before now ("90m") or as a
// time (RFC 3339, or a date at local midnight). "" is the zero time.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid --%s %q: want a duration such as 24h or a time such as 2025-06-01 or 2025-06-01T12:00:00Z", flag, s)
}
