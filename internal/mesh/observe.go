package mesh

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/demo"
)

// observer reads what the loop has done through the control plane's public
// API (the same one the dashboard and the CLI use) for the demo's summary.
type observer struct {
	intel bridgev1connect.IntelligenceServiceClient

	mu     sync.Mutex
	states map[string]bridgev1.RecommendationState // last seen per recommendation
	recs   []*bridgev1.Recommendation
	fresh  []string
}

func newObserver(baseURL string) *observer {
	hc := &http.Client{Timeout: 5 * time.Second}
	return &observer{intel: bridgev1connect.NewIntelligenceServiceClient(hc, baseURL), states: map[string]bridgev1.RecommendationState{}}
}

// StateName is a recommendation state's short name ("enforced").
func StateName(s bridgev1.RecommendationState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RECOMMENDATION_STATE_"))
}

// KindName is a directive kind's short name ("traffic_weights").
func KindName(k bridgev1.DirectiveKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "DIRECTIVE_KIND_"))
}

func (o *observer) snapshot(ctx context.Context, elapsed time.Duration, traffic *demo.TrafficStats, faults *demo.Faults) demo.Snapshot {
	snap := demo.Snapshot{Elapsed: elapsed, Recommendations: map[string]int{}, ActiveFaults: faults.State().Active()}
	if traffic != nil {
		snap.Requests, snap.Failures = traffic.Sent.Load(), traffic.Failed.Load()
	}
	if r, err := o.intel.ListRouteStats(ctx, connect.NewRequest(&bridgev1.ListRouteStatsRequest{Window: bridgev1.Window_WINDOW_1H, Limit: 1000})); err == nil {
		for _, rs := range r.Msg.GetRoutes() {
			snap.Events += rs.GetRequests()
			if rs.GetAnomalous() || rs.GetPerformanceTrend() == bridgev1.PerformanceTrend_PERFORMANCE_TREND_DEGRADING {
				snap.Detected = append(snap.Detected, fmt.Sprintf("%s %s: latency %s (p99 %v, anomaly score %.1f)", rs.GetService(), rs.GetRoute(),
					trendWord(rs), rs.GetP99().AsDuration().Round(time.Millisecond), rs.GetAnomalyScore()))
			}
		}
	}
	if r, err := o.intel.ListPatterns(ctx, connect.NewRequest(&bridgev1.ListPatternsRequest{})); err == nil {
		pats := r.Msg.GetPatterns()
		snap.Patterns = len(pats)
		for i, p := range pats {
			if i >= 6 {
				break
			}
			snap.Detected = append(snap.Detected, fmt.Sprintf("pattern %q ×%d on %s", p.GetTemplate(), p.GetFrequency(), strings.Join(p.GetServices(), ", ")))
		}
	}
	if r, err := o.intel.GetStatus(ctx, connect.NewRequest(&bridgev1.GetStatusRequest{})); err == nil {
		for _, s := range r.Msg.GetSidecars() {
			snap.DirectivesAcked += int(s.GetAckedVersion())
		}
	}
	if r, err := o.intel.ListRecommendations(ctx, connect.NewRequest(&bridgev1.ListRecommendationsRequest{})); err == nil {
		recs := r.Msg.GetRecommendations()
		o.track(recs)
		seen := map[string]bool{}
		for _, rec := range recs { // newest first
			snap.Recommendations[StateName(rec.GetState())]++
			if rec.EffectivenessScore != nil {
				snap.OutcomesMeasured++
			}
			switch rec.GetState() {
			case bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED, bridgev1.RecommendationState_RECOMMENDATION_STATE_SUPERSEDED:
				continue
			}
			// One line per kind and route: its latest change.
			k := rec.GetKind().String() + "|" + rec.GetDirective().GetScope().GetService() + "|" + rec.GetDirective().GetScope().GetRoute()
			if !seen[k] {
				seen[k] = true
				snap.Changes = append(snap.Changes, describe(rec))
			}
		}
	}
	return snap
}

func trendWord(rs *bridgev1.RouteStats) string {
	if rs.GetPerformanceTrend() == bridgev1.PerformanceTrend_PERFORMANCE_TREND_DEGRADING {
		return "degrading"
	}
	return "anomalous"
}

// describe is one line of the report's "changed" section:
// "KIND SERVICE ROUTE: STATE (effectiveness +0.42): explanation".
func describe(rec *bridgev1.Recommendation) string {
	sc := rec.GetDirective().GetScope()
	route := sc.GetRoute()
	if route == "" {
		route = "*"
	}
	s := fmt.Sprintf("%s %s %s: %s", KindName(rec.GetKind()), sc.GetService(), route, StateName(rec.GetState()))
	if rec.EffectivenessScore != nil {
		s += fmt.Sprintf(" (effectiveness %+.2f)", rec.GetEffectivenessScore())
	}
	if e := rec.GetExplanation(); e != "" {
		if len(e) > 140 {
			e = e[:137] + "..."
		}
		s += ": " + e
	}
	return s
}

// track remembers each recommendation's state and queues a line for each
// change, for the summary's recent happenings.
func (o *observer) track(recs []*bridgev1.Recommendation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recs = recs
	for _, rec := range slices.Backward(recs) {
		prev, seen := o.states[rec.GetId()]
		if seen && prev == rec.GetState() {
			continue
		}
		o.states[rec.GetId()] = rec.GetState()
		sc := rec.GetDirective().GetScope()
		line := fmt.Sprintf("loop: %s %s %s %s", KindName(rec.GetKind()), sc.GetService(), sc.GetRoute(), StateName(rec.GetState()))
		if rec.EffectivenessScore != nil {
			line += fmt.Sprintf(" (effectiveness %+.2f)", rec.GetEffectivenessScore())
		}
		o.fresh = append(o.fresh, line)
	}
}

func (o *observer) newChanges() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.fresh
	o.fresh = nil
	if len(out) > 8 { // a burst (the first pass): keep the summary readable
		out = append(out[:7:7], fmt.Sprintf("loop: … and %d more changes", len(out)-7))
	}
	return out
}
