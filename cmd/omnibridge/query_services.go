package main

import (
	"fmt"
	"strings"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
)

func init() { register(newServicesCmd) }

func newServicesCmd() *cobra.Command {
	var q queryFlags
	cmd := &cobra.Command{
		Use:   "services",
		Short: "List the live service catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			res, err := c.ListServices(cmd.Context(), connect.NewRequest(&bridgev1.ListServicesRequest{}))
			if err != nil {
				return fmt.Errorf("list services: %w", err)
			}
			out := cmd.OutOrStdout()
			if q.output == "json" {
				return writeJSON(out, res.Msg)
			}
			t := newTable(out, "NAME", "VERSIONS", "HEALTH", "INSTANCES", "CAPABILITIES", "DEPENDENCIES", "DISCOVERY", "LAST_SEEN")
			for _, s := range res.Msg.GetServices() {
				var disc []string
				for _, m := range s.GetDiscoveryMethods() {
					disc = append(disc, strings.ToLower(strings.TrimPrefix(m.String(), "DISCOVERY_METHOD_")))
				}
				t.row(s.GetName(), joinOr(s.GetVersions()), healthName(s.GetHealth()), fmt.Sprint(s.GetInstances()), joinOr(s.GetCapabilities()),
					joinOr(s.GetDependencies()), joinOr(disc), s.GetLastSeen().AsTime().UTC().Format("2006-01-02T15:04:05Z"))
			}
			return t.flush()
		},
	}
	addQueryFlags(cmd, &q)
	return cmd
}
