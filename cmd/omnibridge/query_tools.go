package main

import (
	"fmt"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
)

func init() { register(newToolsCmd) }

func newToolsCmd() *cobra.Command {
	var (
		q       queryFlags
		service string
	)
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "List the MCP tool registry: usage, success, latency, schema drift",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			res, err := c.ListTools(cmd.Context(), connect.NewRequest(&bridgev1.ListToolsRequest{Service: service}))
			if err != nil {
				return fmt.Errorf("list tools: %w", err)
			}
			out := cmd.OutOrStdout()
			if q.output == "json" {
				return writeJSON(out, res.Msg)
			}
			t := newTable(out, "SERVICE", "TOOL", "CALLS", "SUCCESS", "P50", "P99", "SCHEMAS", "STATUS", "SIMILAR")
			for _, tl := range res.Msg.GetTools() {
				status := "ok"
				if tl.GetDegraded() {
					status = "DEGRADED: " + tl.GetDegradedReason()
				}
				t.row(tl.GetService(), tl.GetName(), fmt.Sprint(tl.GetCalls()), pct(tl.GetSuccessRate()), fmtDur(tl.GetP50()), fmtDur(tl.GetP99()),
					fmt.Sprint(len(tl.GetHistory())), status, joinOr(tl.GetIntegrationOpportunities()))
			}
			return t.flush()
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&service, "service", "", "only tools of this service")
	return cmd
}
