package main

import (
	"fmt"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
)

func init() { register(newPatternsCmd) }

func newPatternsCmd() *cobra.Command {
	var (
		q       queryFlags
		service string
		limit   uint32
	)
	cmd := &cobra.Command{
		Use:   "patterns",
		Short: "List failure patterns: templates, frequency, services, root cause",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			res, err := c.ListPatterns(cmd.Context(), connect.NewRequest(&bridgev1.ListPatternsRequest{Service: service, Limit: limit}))
			if err != nil {
				return fmt.Errorf("list patterns: %w", err)
			}
			out := cmd.OutOrStdout()
			if q.output == "json" {
				return writeJSON(out, res.Msg)
			}
			t := newTable(out, "ID", "COUNT", "CONFIDENCE", "ROOT_CAUSE", "SERVICES", "CODES", "LAST_SEEN", "TEMPLATE")
			for _, p := range res.Msg.GetPatterns() {
				id := p.GetId()
				if len(id) > 8 {
					id = id[:8]
				}
				t.row(id, fmt.Sprint(p.GetFrequency()), fmt.Sprintf("%.2f", p.GetConfidence()), orDash(p.GetRootCauseService()), joinOr(p.GetServices()),
					joinOr(p.GetCodes()), p.GetLastSeen().AsTime().UTC().Format("15:04:05"), p.GetTemplate())
			}
			return t.flush()
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&service, "service", "", "only patterns that hit this service")
	cmd.Flags().Uint32Var(&limit, "limit", 50, "at most this many, most frequent first")
	return cmd
}
