package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust"
)

func newLsCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List functions",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			fns, err := c.Functions(cmd.Context())
			if err != nil {
				return err
			}
			if out == "json" {
				if fns == nil {
					fns = []*gust.Function{}
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"functions": fns})
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tLIVE\tLATEST\tUPDATED")
			now := a.now()
			for _, f := range fns {
				live := fmt.Sprint(f.Live)
				if al, ok := f.Aliases[gust.AliasLive]; ok && len(al.Targets) > 0 {
					live = targetsText(al.Targets)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", f.Name, live, f.LatestVersion, ago(f.UpdatedAt, now))
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &out)
	return cmd
}

func newVersionsCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "versions NAME",
		Short: "List the versions of a function, marking where its aliases point",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			vs, err := c.Versions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out == "json" {
				if vs == nil {
					vs = []*gust.Version{}
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"versions": vs})
			}
			fn, err := c.Function(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// marks[v] lists the aliases routing to version v, with their
			// share when they split traffic.
			marks := map[int][]string{}
			for _, name := range aliasNames(fn.Aliases) {
				for _, t := range fn.Aliases[name].Targets {
					m := name
					if t.Weight != 100 {
						m = fmt.Sprintf("%s (%d%%)", name, t.Weight)
					}
					marks[t.Version] = append(marks[t.Version], m)
				}
			}
			live := map[int]bool{}
			if al, ok := fn.Aliases[gust.AliasLive]; ok {
				for _, t := range al.Targets {
					live[t.Version] = true
				}
			} else if fn.Live > 0 {
				live[fn.Live] = true
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "VERSION\tCREATED\tRUNTIME\tMEMORY\tTIMEOUT\tDIGEST\tSNAPSHOT\tALIASES")
			now := a.now()
			for _, v := range vs {
				// Show what the version runs with, defaults included.
				s := v.Spec.WithDefaults()
				num := strconv.Itoa(v.Number)
				if live[v.Number] {
					num += " *"
				}
				aliases := strings.Join(marks[v.Number], ", ")
				if aliases == "" {
					aliases = "-"
				}
				snap := v.Snapshot
				if snap == "" {
					snap = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%dMB\t%s\t%s\t%s\t%s\n", num, ago(v.CreatedAt, now), s.Runtime, s.MemoryMB, s.Timeout, shortDigest(v.CodeDigest), snap, aliases)
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &out)
	return cmd
}

// shortDigest is enough of a sha256 digest to tell artifacts apart by eye,
// as git shows commits.
func shortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok {
		hex = d
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if hex == "" {
		return "-"
	}
	return hex
}

func parseVersion(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("invalid version %q: want a positive number such as 3", s)
	}
	return n, nil
}

func newRollbackCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback NAME VERSION",
		Short: "Point a function's live alias wholly at an earlier version",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseVersion(args[1])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			fn, err := c.Rollback(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rolled back %s: version %d is live\n", fn.Name, fn.Live)
			return nil
		},
	}
}

func newRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete a function with all its versions and aliases",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
}
