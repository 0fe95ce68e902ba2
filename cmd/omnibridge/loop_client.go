package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// adminClient returns an AdminService client for the query flags.
func (q *queryFlags) adminClient() (bridgev1connect.AdminServiceClient, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	var opts []connect.ClientOption
	if q.token != "" {
		opts = append(opts, connect.WithInterceptors(bearer(q.token)))
	}
	return bridgev1connect.NewAdminServiceClient(http.DefaultClient, strings.TrimRight(q.server, "/"), opts...), nil
}

func kindLabel(k bridgev1.DirectiveKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "DIRECTIVE_KIND_"))
}

func modeLabel(m bridgev1.DirectiveMode) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "DIRECTIVE_MODE_"))
}

func stateLabel(s bridgev1.RecommendationState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RECOMMENDATION_STATE_"))
}

func parseMode(s string) (bridgev1.DirectiveMode, error) {
	v, ok := bridgev1.DirectiveMode_value["DIRECTIVE_MODE_"+strings.ToUpper(strings.ReplaceAll(s, "-", "_"))]
	if !ok || v == 0 {
		return 0, fmt.Errorf("invalid mode %q: want recommend, dry_run or enforce", s)
	}
	return bridgev1.DirectiveMode(v), nil
}

func parseKind(s string) (bridgev1.DirectiveKind, error) {
	v, ok := bridgev1.DirectiveKind_value["DIRECTIVE_KIND_"+strings.ToUpper(strings.ReplaceAll(s, "-", "_"))]
	if !ok || v == 0 {
		return 0, fmt.Errorf("invalid kind %q: want timeout, retry, circuit_breaker, rate_limit, concurrency_limit, response_cache, traffic_weights or event_sampling", s)
	}
	return bridgev1.DirectiveKind(v), nil
}

func parseState(s string) (bridgev1.RecommendationState, error) {
	v, ok := bridgev1.RecommendationState_value["RECOMMENDATION_STATE_"+strings.ToUpper(strings.ReplaceAll(s, "-", "_"))]
	if !ok || v == 0 {
		return 0, fmt.Errorf("invalid state %q: want proposed, dry_run, enforced, kept, rejected, rolled_back, superseded or expired", s)
	}
	return bridgev1.RecommendationState(v), nil
}

func fmtTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func fmtAge(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return time.Since(t.AsTime()).Round(time.Second).String()
}

func scoreOf(r *bridgev1.Recommendation) string {
	if r.EffectivenessScore == nil {
		return "-"
	}
	return fmt.Sprintf("%+.2f", r.GetEffectivenessScore())
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
