package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust"
)

func newAliasCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alias",
		Short: "Name a version of a function, or split traffic between two (canary)",
		Long: `An alias routes to one version, or splits traffic between two by weight.
The alias "live" is what /fn/NAME and "gust deploy" use; setting it with two
versions runs a canary.`,
	}
	cmd.AddCommand(newAliasSetCmd(a), newAliasRmCmd(a), newAliasLsCmd(a))
	return cmd
}

// parseTargets reads "3" or "3=90 4=10". Weights are left to the server to
// check (it knows the rules); only text that is not a target fails here,
// with an example, before anything is sent.
func parseTargets(args []string) ([]gust.AliasTarget, error) {
	ts := make([]gust.AliasTarget, 0, len(args))
	for _, arg := range args {
		vs, ws, split := strings.Cut(arg, "=")
		v, err := strconv.Atoi(vs)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("invalid target %q: want VERSION or VERSION=WEIGHT, such as 3 or 3=90", arg)
		}
		w := 100
		if split {
			if w, err = strconv.Atoi(ws); err != nil {
				return nil, fmt.Errorf("invalid target %q: weight %q is not a number; want VERSION=WEIGHT, such as 3=90", arg, ws)
			}
		}
		ts = append(ts, gust.AliasTarget{Version: v, Weight: w})
	}
	return ts, nil
}

func newAliasSetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME ALIAS VERSION[=WEIGHT]...",
		Short: "Create or replace an alias",
		Example: `  gust alias set hello stable 3
  gust alias set hello live 3=90 4=10   # send 10% of live traffic to version 4`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := parseTargets(args[2:])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			fn, err := c.SetAlias(cmd.Context(), args[0], args[1], ts)
			if err != nil {
				return err
			}
			shown := ts
			if al, ok := fn.Aliases[args[1]]; ok {
				shown = al.Targets
			}
			fmt.Fprintf(cmd.OutOrStdout(), "alias %s of %s: %s\n", args[1], args[0], targetsText(shown))
			return nil
		},
	}
}

func newAliasRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME ALIAS",
		Short: "Delete an alias (not live)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if _, err := c.DeleteAlias(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted alias %s of %s\n", args[1], args[0])
			return nil
		},
	}
}

func newAliasLsCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "ls NAME",
		Short: "List the aliases of a function",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			fn, err := c.Function(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out == "json" {
				aliases := fn.Aliases
				if aliases == nil {
					aliases = map[string]gust.Alias{}
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"aliases": aliases})
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ALIAS\tTARGETS")
			for _, name := range aliasNames(fn.Aliases) {
				fmt.Fprintf(tw, "%s\t%s\n", name, targetsText(fn.Aliases[name].Targets))
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &out)
	return cmd
}
