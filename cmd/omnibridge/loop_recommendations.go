package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
)

func init() { register(newRecommendationsCmd) }

func newRecommendationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "recommendations",
		Aliases: []string{"recs"},
		Short:   "List, explain, apply or reject the optimizer's recommendations",
		Long: `Recommendations are the optimization engine's proposals (timeouts, retries with
budgets, circuit breakers, limits, caching, traffic weights, sampling), each with
its evidence, confidence and expected impact. Without a subcommand, lists them.
Applying, rejecting and rolling back are audited with your identity and reason.`,
	}
	list := newRecsListCmd()
	cmd.RunE, cmd.Args = list.RunE, cobra.NoArgs
	cmd.Flags().AddFlagSet(list.Flags())
	cmd.AddCommand(list, newRecsExplainCmd(), newRecsApplyCmd(), newRecsRejectCmd(), newAuditCmd())
	return cmd
}

func newRecsListCmd() *cobra.Command {
	var q queryFlags
	var service string
	var states []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recommendations, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			req := &bridgev1.ListRecommendationsRequest{Service: service}
			for _, s := range states {
				st, err := parseState(s)
				if err != nil {
					return err
				}
				req.States = append(req.States, st)
			}
			res, err := c.ListRecommendations(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return fmt.Errorf("list recommendations: %w", err)
			}
			out := cmd.OutOrStdout()
			if q.output == "json" {
				return writeJSON(out, res.Msg)
			}
			t := newTable(out, "ID", "SERVICE", "ROUTE", "KIND", "MODE", "STATE", "CONFIDENCE", "SCORE", "AGE", "WHY")
			for _, r := range res.Msg.GetRecommendations() {
				why := r.GetStateReason()
				if why == "" {
					why = r.GetExplanation()
				}
				t.row(r.GetId(), r.GetDirective().GetScope().GetService(), orDash(r.GetDirective().GetScope().GetRoute()), kindLabel(r.GetKind()),
					modeLabel(r.GetDirective().GetMode()), stateLabel(r.GetState()), fmt.Sprintf("%.2f", r.GetConfidence()), scoreOf(r),
					fmtAge(r.GetCreatedAt()), shorten(why, 120))
			}
			return t.flush()
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&service, "service", "", "only this service")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states (proposed, dry_run, enforced, kept, rejected, rolled_back, superseded, expired)")
	return cmd
}

func newRecsExplainCmd() *cobra.Command {
	var q queryFlags
	cmd := &cobra.Command{
		Use:   "explain ID",
		Short: "Explain one recommendation with its evidence",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			res, err := c.GetRecommendation(cmd.Context(), connect.NewRequest(&bridgev1.GetRecommendationRequest{Id: args[0]}))
			if err != nil {
				return fmt.Errorf("get recommendation: %w", err)
			}
			if q.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res.Msg)
			}
			return explain(cmd.OutOrStdout(), res.Msg.GetRecommendation())
		},
	}
	addQueryFlags(cmd, &q)
	return cmd
}

func explain(w io.Writer, r *bridgev1.Recommendation) error {
	d := r.GetDirective()
	fmt.Fprintf(w, "Recommendation %s\n", r.GetId())
	fmt.Fprintf(w, "  kind:        %s\n  service:     %s\n  route:       %s\n", kindLabel(r.GetKind()), d.GetScope().GetService(), orDash(d.GetScope().GetRoute()))
	fmt.Fprintf(w, "  state:       %s", stateLabel(r.GetState()))
	if r.GetStateReason() != "" {
		fmt.Fprintf(w, " (%s)", r.GetStateReason())
	}
	fmt.Fprintf(w, "\n  mode:        %s\n  confidence:  %.2f\n  score:       %s\n", modeLabel(d.GetMode()), r.GetConfidence(), scoreOf(r))
	fmt.Fprintf(w, "  created:     %s\n  applied:     %s\n  expires:     %s\n", fmtTime(r.GetCreatedAt()), fmtTime(r.GetAppliedAt()), fmtTime(d.GetExpiresAt()))
	fmt.Fprintf(w, "\nWhy:\n  %s\n", r.GetExplanation())
	spec, _ := protojson.Marshal(d)
	fmt.Fprintf(w, "\nDirective:\n  %s\n", spec)
	for _, sec := range []struct {
		name string
		m    map[string]any
	}{{"Evidence", r.GetEvidence().AsMap()}, {"Expected impact", r.GetExpectedImpact().AsMap()}} {
		if len(sec.m) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", sec.name)
		keys := make([]string, 0, len(sec.m))
		for k := range sec.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-24s %v\n", k+":", sec.m[k])
		}
	}
	return nil
}

func newRecsApplyCmd() *cobra.Command {
	var q queryFlags
	var mode, reason string
	var canary float64
	cmd := &cobra.Command{
		Use:   "apply ID",
		Short: "Apply a recommendation (enforce, or dry_run), optionally to a canary share of sidecars first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseMode(mode)
			if err != nil {
				return err
			}
			if m == bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND {
				return fmt.Errorf("invalid --mode recommend: apply with dry_run or enforce")
			}
			if canary < 0 || canary >= 1 {
				return fmt.Errorf("invalid --canary %v: want 0 (all at once) up to but not including 1", canary)
			}
			c, err := q.adminClient()
			if err != nil {
				return err
			}
			res, err := c.ApplyRecommendation(cmd.Context(), connect.NewRequest(&bridgev1.ApplyRecommendationRequest{Id: args[0], Mode: m, Reason: reason, CanaryFraction: canary}))
			if err != nil {
				return fmt.Errorf("apply recommendation: %w", err)
			}
			if q.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res.Msg)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied %s as %s in snapshot version %d\n", args[0], stateLabel(res.Msg.GetRecommendation().GetState()), res.Msg.GetVersion())
			return nil
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&mode, "mode", "enforce", "dry_run or enforce")
	cmd.Flags().Float64Var(&canary, "canary", 0, "share of the service's sidecars that get it first (0: all at once)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func newRecsRejectCmd() *cobra.Command {
	var q queryFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "reject ID",
		Short: "Reject a proposed recommendation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := q.adminClient()
			if err != nil {
				return err
			}
			res, err := c.RejectRecommendation(cmd.Context(), connect.NewRequest(&bridgev1.RejectRecommendationRequest{Id: args[0], Reason: reason}))
			if err != nil {
				return fmt.Errorf("reject recommendation: %w", err)
			}
			if q.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res.Msg)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rejected %s\n", args[0])
			return nil
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func newAuditCmd() *cobra.Command {
	var q queryFlags
	var limit uint32
	cmd := &cobra.Command{
		Use:   "audit [ID]",
		Short: "Show the audit log (of one recommendation when ID is given), newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := q.adminClient()
			if err != nil {
				return err
			}
			req := &bridgev1.ListAuditRequest{Limit: limit}
			if len(args) == 1 {
				req.RecommendationId = args[0]
			}
			res, err := c.ListAudit(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return fmt.Errorf("list audit: %w", err)
			}
			if q.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res.Msg)
			}
			t := newTable(cmd.OutOrStdout(), "AT", "ACTOR", "ACTION", "RECOMMENDATION", "SERVICE", "REASON")
			for _, e := range res.Msg.GetEntries() {
				t.row(fmtTime(e.GetAt()), e.GetActor(), e.GetAction(), orDash(e.GetRecommendationId()), orDash(e.GetService()), strings.ReplaceAll(e.GetReason(), "\n", " "))
			}
			return t.flush()
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().Uint32Var(&limit, "limit", 100, "at most this many entries")
	return cmd
}
