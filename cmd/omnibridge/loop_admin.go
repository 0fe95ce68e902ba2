package main

import (
	"fmt"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
)

func init() {
	register(newRollbackCmd)
	register(newStatusCmd)
	register(newModeCmd)
}

func newRollbackCmd() *cobra.Command {
	var q queryFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "rollback ID",
		Short: "Roll back an applied recommendation: remove its directive from the sidecars",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := q.adminClient()
			if err != nil {
				return err
			}
			res, err := c.Rollback(cmd.Context(), connect.NewRequest(&bridgev1.RollbackRequest{Id: args[0], Reason: reason}))
			if err != nil {
				return fmt.Errorf("roll back: %w", err)
			}
			if q.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res.Msg)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rolled back %s; snapshot version %d no longer carries it\n", args[0], res.Msg.GetVersion())
			return nil
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func newStatusCmd() *cobra.Command {
	var q queryFlags
	var service string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every sidecar's directive sync state (sent, acknowledged, rejected), like istioctl proxy-status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			res, err := c.GetStatus(cmd.Context(), connect.NewRequest(&bridgev1.GetStatusRequest{Service: service}))
			if err != nil {
				return fmt.Errorf("get status: %w", err)
			}
			if q.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res.Msg)
			}
			t := newTable(cmd.OutOrStdout(), "SERVICE", "INSTANCE", "POD", "CURRENT", "SENT", "ACKED", "REJECTED", "SYNC", "CONNECTED", "LAST_SEEN", "REASON")
			for _, s := range res.Msg.GetSidecars() {
				rej := "-"
				if s.GetRejectedVersion() != 0 {
					rej = fmt.Sprint(s.GetRejectedVersion())
				}
				t.row(s.GetService(), s.GetInstance(), orDash(s.GetPod()), fmt.Sprint(res.Msg.GetVersions()[s.GetService()]), fmt.Sprint(s.GetSentVersion()),
					fmt.Sprint(s.GetAckedVersion()), rej, s.GetSyncState(), fmt.Sprint(s.GetConnected()), fmtAge(s.GetLastSeen())+" ago", orDash(s.GetRejectReason()))
			}
			return t.flush()
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&service, "service", "", "only this service")
	return cmd
}

func newModeCmd() *cobra.Command {
	var q queryFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "mode SERVICE KIND MODE",
		Short: "Set the mode (recommend, dry_run, enforce) of a directive kind for a service (\"*\": every service)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := parseKind(args[1])
			if err != nil {
				return err
			}
			mode, err := parseMode(args[2])
			if err != nil {
				return err
			}
			c, err := q.adminClient()
			if err != nil {
				return err
			}
			res, err := c.SetMode(cmd.Context(), connect.NewRequest(&bridgev1.SetModeRequest{Service: args[0], Kind: kind, Mode: mode, Reason: reason}))
			if err != nil {
				return fmt.Errorf("set mode: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", args[0], kindLabel(kind), modeLabel(res.Msg.GetMode()))
			return nil
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}
