package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newNodesCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the live gust nodes of the cluster: address, load, instances, memory, version",
		Long: `nodes lists every gust node that heartbeats on the cluster's NATS, as the
node at --url sees them (marked *). A node missing three heartbeats is
dropped; its share of each function's max concurrency goes to the others.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			nodes, err := c.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), nodes)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tADDRESS\tIN FLIGHT\tINSTANCES\tMEMORY MB\tVERSION\tSTARTED\tSEEN")
			now := a.now()
			for _, n := range nodes {
				id := n.ID
				if n.Self {
					id += " *"
				}
				mem := fmt.Sprintf("%d/%d", n.MemoryUsedMB, n.MemoryBudgetMB)
				if n.MemoryBudgetMB == 0 {
					mem = fmt.Sprintf("%d/-", n.MemoryUsedMB)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", id, n.Address, n.InFlight, n.Instances, mem, n.Version, ago(n.Started, now), ago(n.LastSeen, now))
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &out)
	return cmd
}
