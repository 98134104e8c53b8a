package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/wasm"
)

func newBuildCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build DIR -o FILE.wasm",
		Short: "Compile a Go function to WebAssembly",
		Long: `Compile the Go function in DIR to a WebAssembly module that the wasm
runtime runs. With no -o the module is written to DIR's base name plus .wasm
in the current directory.`,
		Example: `  gust build ./hello -o hello.wasm && gust deploy hello --code hello.wasm`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if out == "" {
				abs, err := filepath.Abs(dir)
				if err != nil {
					return fmt.Errorf("build: %w", err)
				}
				out = filepath.Base(abs) + ".wasm"
			}
			if err := wasm.BuildGo(cmd.Context(), dir, out); err != nil {
				return err
			}
			st, err := os.Stat(out)
			if err != nil {
				return fmt.Errorf("build: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s (%d bytes)\n", out, st.Size())
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "module to write (default DIR's name + .wasm)")
	return cmd
}
