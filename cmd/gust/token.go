package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (admin scope)",
	}
	var (
		scope     string
		functions []string
		expires   time.Duration
		out       string
	)
	create := &cobra.Command{
		Use:   "create --scope deploy|invoke|read|admin [--function NAME]... [--expires DUR]",
		Short: "Issue a token; it is printed once, on the last line",
		Example: `  gust token create --scope deploy --function hello --expires 720h
  gust token create --scope read`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			secret, tok, err := c.CreateToken(cmd.Context(), scope, functions, expires)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fns := "all functions"
			if len(tok.Functions) > 0 {
				fns = strings.Join(tok.Functions, ", ")
			}
			exp := "never expires"
			if !tok.ExpiresAt.IsZero() {
				exp = "expires " + tok.ExpiresAt.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "token %s: scope %s on %s, %s. It is shown only now:\n%s\n", tok.ID, tok.Scope, fns, exp, secret)
			return nil
		},
	}
	create.Flags().StringVar(&scope, "scope", "", "admin, deploy, read or invoke")
	create.Flags().StringArrayVar(&functions, "function", nil, "limit the token to this function (repeatable)")
	create.Flags().DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (default: never expires)")
	_ = create.MarkFlagRequired("scope")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			toks, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), toks)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tSCOPE\tFUNCTIONS\tCREATED\tEXPIRES")
			now := a.now()
			for _, t := range toks {
				fns, exp := "*", "never"
				if len(t.Functions) > 0 {
					fns = strings.Join(t.Functions, ",")
				}
				if !t.ExpiresAt.IsZero() {
					exp = t.ExpiresAt.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Scope, fns, ago(t.CreatedAt, now), exp)
			}
			return tw.Flush()
		},
	}
	outputFlag(ls, &out)

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, ls, revoke)
	return cmd
}
