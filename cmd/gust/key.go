package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newKeyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Create, list and revoke API keys of a function's routes (auth: api-key)",
	}
	var (
		route string
		out   string
	)
	create := &cobra.Command{
		Use:   "create NAME [--route ROUTE]",
		Short: "Issue an API key for NAME; it is printed once, on the last line",
		Long: `Issue an API key for the routes of function NAME that have auth: api-key.
With --route, the key opens only the route with that name (a route's name,
or "METHOD PATH" for a route without one). Callers send it in the
X-Api-Key header.`,
		Example: `  gust key create validate --route readings
  curl -H "X-Api-Key: gk_..." http://127.0.0.1:8080/fn/validate/readings`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			secret, k, err := c.CreateAPIKey(cmd.Context(), args[0], route)
			if err != nil {
				return err
			}
			on := "every api-key route"
			if k.Route != "" {
				on = "route " + k.Route
			}
			fmt.Fprintf(cmd.OutOrStdout(), "api key %s of %s, for %s. It is shown only now:\n%s\n", k.ID, k.Function, on, secret)
			return nil
		},
	}
	create.Flags().StringVar(&route, "route", "", "limit the key to the route with this name")

	ls := &cobra.Command{
		Use:   "ls NAME",
		Short: "List the API keys of NAME (never their secrets)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			keys, err := c.APIKeys(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), keys)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tROUTE\tCREATED")
			now := a.now()
			for _, k := range keys {
				r := k.Route
				if r == "" {
					r = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, r, ago(k.CreatedAt, now))
			}
			return tw.Flush()
		},
	}
	outputFlag(ls, &out)

	revoke := &cobra.Command{
		Use:   "revoke NAME ID",
		Short: "Revoke an API key of NAME at once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeAPIKey(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked api key %s of %s\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(create, ls, revoke)
	return cmd
}
