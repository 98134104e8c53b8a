package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/secrets"
)

func newSecretCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage secrets: encrypted at rest, given to functions that list them (admin scope)",
	}
	var fromFile, out string
	set := &cobra.Command{
		Use:   "set NAME [--from-file FILE]",
		Short: "Set a secret from stdin (or a file); never from a flag, so it stays out of shell history",
		Example: `  printf %s "$DB_PASSWORD" | gust secret set DB_PASSWORD
  gust secret set TLS_KEY --from-file key.pem`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var value []byte
			var err error
			if fromFile != "" {
				value, err = os.ReadFile(fromFile)
			} else {
				value, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), secrets.MaxValueBytes+1))
				// A value typed or echoed usually ends with one newline
				// that is not part of it.
				value = bytes.TrimSuffix(value, []byte("\n"))
			}
			if err != nil {
				return fmt.Errorf("reading the secret value: %w", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			info, err := c.SetSecret(cmd.Context(), args[0], value)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secret %s set (master key %s)\n", info.Name, info.KeyID)
			return nil
		},
	}
	set.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file instead of stdin")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List secrets (names only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.Secrets(cmd.Context())
			if err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tKEY\tUPDATED")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.KeyID, ago(s.UpdatedAt, a.now()))
			}
			return tw.Flush()
		},
	}
	outputFlag(ls, &out)
	var force bool
	rm := &cobra.Command{
		Use:   "rm NAME [--force]",
		Short: "Delete a secret that no live or aliased version uses (--force: even if one does)",
		Long: `Delete a secret. A secret that a version an alias points to (live or
another) uses, as env, webhook key or JWT key, is refused, naming those
versions: without it they would answer 503 on every call. Deploy versions
without it first, or delete it anyway with --force, which says which
functions will now fail.`,
		Example: `  gust secret rm OLD_API_KEY
  gust secret rm OLD_API_KEY --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			failing, err := c.RemoveSecret(cmd.Context(), args[0], force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secret %s deleted\n", args[0])
			if len(failing) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: these versions use %s; wherever they load again (a restart, another node) they answer 503 until it is set again (gust secret set %s):\n", args[0], args[0])
				for _, u := range failing {
					who := "live"
					if len(u.Aliases) != 1 || u.Aliases[0] != "live" {
						who = "alias " + strings.Join(u.Aliases, ", ")
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "  %s version %d (%s; %s)\n", u.Function, u.Version, who, strings.Join(u.As, ", "))
				}
			}
			return nil
		},
	}
	rm.Flags().BoolVar(&force, "force", false, "delete it even if live or aliased versions use it (they will answer 503)")
	rotate := &cobra.Command{
		Use:   "rotate-key",
		Short: "Make a new master key and re-encrypt every secret under it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, n, err := c.RotateSecretKey(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "master key is now %s; %d secrets re-encrypted\n", id, n)
			return nil
		},
	}
	cmd.AddCommand(set, ls, rm, rotate)
	return cmd
}
