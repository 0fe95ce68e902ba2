package ui

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeAPI is a fixed-data control plane for the browser test: the generated
// Connect handlers serve it, so the page speaks the real protocol.
type fakeAPI struct {
	bridgev1connect.UnimplementedIntelligenceServiceHandler
	bridgev1connect.UnimplementedAdminServiceHandler

	mu      sync.Mutex
	recs    map[string]*bridgev1.Recommendation
	version uint64
	calls   []string // "Method id mode" in order
	auth    []string // Authorization headers seen
	// empty makes every list empty (a fresh control plane).
	empty bool
	// tapFails makes this many Tap calls fail with unavailable first.
	tapFails int
}

var _ bridgev1connect.IntelligenceServiceHandler = (*fakeAPI)(nil)
var _ bridgev1connect.AdminServiceHandler = (*fakeAPI)(nil)

func newFakeAPI() *fakeAPI {
	now := time.Now()
	ev, _ := structpb.NewStruct(map[string]any{"window": "5m", "error_rate": 0.31, "requests": 1840, "sample_trace_ids": []any{"4bf92f3577b34da6a3ce929d0e0e4736"}})
	imp, _ := structpb.NewStruct(map[string]any{"error_rate": -0.8})
	rec := func(id, svc string, kind bridgev1.DirectiveKind, d *bridgev1.Directive, expl string) *bridgev1.Recommendation {
		d.Id = "dir-" + id
		d.Scope = &bridgev1.Scope{Service: svc}
		d.Mode = bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE
		return &bridgev1.Recommendation{Id: id, Kind: kind, Directive: d, State: bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED,
			Evidence: ev, ExpectedImpact: imp, Confidence: 0.86, CreatedAt: timestamppb.New(now.Add(-40 * time.Second)), Explanation: expl}
	}
	f := &fakeAPI{recs: map[string]*bridgev1.Recommendation{}, version: 3}
	f.recs["rec-1"] = rec("rec-1", "payments", bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, &bridgev1.Directive{Spec: &bridgev1.Directive_Retry{Retry: &bridgev1.RetryPolicy{
		MaxAttempts: 3, BackoffBase: durationpb.New(20 * time.Millisecond), RetryOnStatus: []int32{503}, IdempotentOnly: true, BudgetRatio: 0.2, MinRetriesPerSecond: 5}}},
		"payments answers 503 to 31% of charges over 5m; retrying twice within a 20% budget should hide most of them.")
	f.recs["rec-2"] = rec("rec-2", "orders", bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS, &bridgev1.Directive{Spec: &bridgev1.Directive_TrafficWeights{TrafficWeights: &bridgev1.TrafficWeightsPolicy{
		Endpoints: []*bridgev1.WeightedEndpoint{{Endpoint: "http://127.0.0.1:9001", Version: "v1", Weight: 100}, {Endpoint: "http://127.0.0.1:9002", Version: "v2", Weight: 0}}}}},
		"orders v2 fails 48% of requests against 0.4% for v1; drain the canary.")
	return f
}

func d(ms float64) *durationpb.Duration {
	return durationpb.New(time.Duration(ms * float64(time.Millisecond)))
}

func (f *fakeAPI) seen(h http.Header) {
	f.mu.Lock()
	f.auth = append(f.auth, h.Get("Authorization"))
	f.mu.Unlock()
}

var fakeServices = []*bridgev1.ServiceSummary{
	{Name: "catalog", Versions: []string{"v1"}, Health: bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY, Instances: 1},
	{Name: "inventory", Versions: []string{"v1"}, Health: bridgev1.HealthStatus_HEALTH_STATUS_DEGRADED, Instances: 1},
	{Name: "orders", Versions: []string{"v1", "v2"}, Health: bridgev1.HealthStatus_HEALTH_STATUS_DEGRADED, Instances: 2},
	{Name: "payments", Versions: []string{"v1"}, Health: bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY, Instances: 1},
	{Name: "storefront", Versions: []string{"v1"}, Health: bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY, Instances: 1},
}

func (f *fakeAPI) ListServices(_ context.Context, r *connect.Request[bridgev1.ListServicesRequest]) (*connect.Response[bridgev1.ListServicesResponse], error) {
	f.seen(r.Header())
	return connect.NewResponse(&bridgev1.ListServicesResponse{Services: fakeServices}), nil
}

func (f *fakeAPI) GetServiceGraph(_ context.Context, r *connect.Request[bridgev1.GetServiceGraphRequest]) (*connect.Response[bridgev1.GetServiceGraphResponse], error) {
	f.seen(r.Header())
	if f.empty {
		return connect.NewResponse(&bridgev1.GetServiceGraphResponse{}), nil
	}
	e := func(s, t string, rate, errs, p50, p99 float64) *bridgev1.GraphEdge {
		return &bridgev1.GraphEdge{Source: s, Target: t, RequestRate: rate, ErrorRate: errs, P50: d(p50), P99: d(p99), Requests: uint64(rate * 60)}
	}
	return connect.NewResponse(&bridgev1.GetServiceGraphResponse{
		Services: fakeServices,
		Edges: []*bridgev1.GraphEdge{
			e("catalog", "inventory", 9.1, 0, 3, 12), e("catalog", "payments", 0.8, 0.3, 4, 30),
			e("edge", "storefront", 20, 0.07, 8, 260), e("orders", "inventory", 3.6, 0, 255, 290),
			e("orders", "payments", 3.6, 0.31, 4, 22), e("storefront", "catalog", 14.2, 0.02, 6, 280), e("storefront", "orders", 5.2, 0.36, 270, 410),
		},
		CausalHints: []*bridgev1.CausalHint{{EffectService: "storefront", CauseService: "payments", Evidence: "payments 503s rose 12 s before storefront 502s (r=0.93)", Confidence: 0.81}},
	}), nil
}

func (f *fakeAPI) ListRouteStats(_ context.Context, r *connect.Request[bridgev1.ListRouteStatsRequest]) (*connect.Response[bridgev1.ListRouteStatsResponse], error) {
	f.seen(r.Header())
	if f.empty {
		return connect.NewResponse(&bridgev1.ListRouteStatsResponse{}), nil
	}
	jit := float64(time.Now().UnixMilli()%50) / 10
	rs := func(svc, route string, req uint64, rate, errs, p50, p99 float64, trend bridgev1.PerformanceTrend, anomalous bool) *bridgev1.RouteStats {
		return &bridgev1.RouteStats{Service: svc, Route: route, Requests: req, RequestRate: rate, ErrorRate: errs, P50: d(p50), P90: d((p50 + p99) / 2), P99: d(p99 + jit),
			VsHistoricalAvg: 1.1, PerformanceTrend: trend, Anomalous: anomalous, AnomalyScore: 4.2, Bottlenecks: []*bridgev1.Bottleneck{{Name: "upstream", Share: 0.8}}}
	}
	return connect.NewResponse(&bridgev1.ListRouteStatsResponse{Routes: []*bridgev1.RouteStats{
		rs("storefront", "/api/products/{sku}", 540, 9, 0.02, 7, 40, bridgev1.PerformanceTrend_PERFORMANCE_TREND_STABLE, false),
		rs("orders", "/orders", 212, 3.5, 0.36, 265, 420, bridgev1.PerformanceTrend_PERFORMANCE_TREND_DEGRADING, true),
		rs("payments", "/payments/charge", 210, 3.5, 0.31, 4, 22, bridgev1.PerformanceTrend_PERFORMANCE_TREND_STABLE, false),
	}}), nil
}

func (f *fakeAPI) ListPatterns(_ context.Context, r *connect.Request[bridgev1.ListPatternsRequest]) (*connect.Response[bridgev1.ListPatternsResponse], error) {
	f.seen(r.Header())
	if f.empty {
		return connect.NewResponse(&bridgev1.ListPatternsResponse{}), nil
	}
	return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("pattern store is down"))
}

func (f *fakeAPI) ListTools(_ context.Context, r *connect.Request[bridgev1.ListToolsRequest]) (*connect.Response[bridgev1.ListToolsResponse], error) {
	f.seen(r.Header())
	if f.empty {
		return connect.NewResponse(&bridgev1.ListToolsResponse{}), nil
	}
	sig := func(props ...string) *structpb.Struct {
		p := map[string]any{}
		for _, n := range props {
			p[n] = map[string]any{"type": "string"}
		}
		s, _ := structpb.NewStruct(map[string]any{"type": "object", "properties": p})
		return s
	}
	t0 := timestamppb.New(time.Now().Add(-2 * time.Minute))
	return connect.NewResponse(&bridgev1.ListToolsResponse{Tools: []*bridgev1.Tool{
		{Name: "catalog.search", Service: "catalog", Description: "Search the product catalog by name.", Signature: sig("query"), Calls: 410, SuccessRate: 1, P50: d(4), P99: d(9),
			History: []*bridgev1.ToolVersion{{SchemaHash: "a1b2c3d4e5f60718", Signature: sig("query"), SeenAt: t0}}},
		{Name: "inventory.check", Service: "catalog", Description: "Check how many units of a product are available.", Signature: sig("sku", "warehouse"), Calls: 930, SuccessRate: 0.74, P50: d(6), P99: d(280),
			Degraded: true, DegradedReason: "success rate 74% over 5m, was 100%",
			History: []*bridgev1.ToolVersion{{SchemaHash: "0f1e2d3c4b5a6978", Signature: sig("sku"), SeenAt: t0}, {SchemaHash: "99aa88bb77cc66dd", Signature: sig("sku", "warehouse"), SeenAt: timestamppb.Now()}}},
	}}), nil
}

func (f *fakeAPI) ListRecommendations(_ context.Context, r *connect.Request[bridgev1.ListRecommendationsRequest]) (*connect.Response[bridgev1.ListRecommendationsResponse], error) {
	f.seen(r.Header())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.empty {
		return connect.NewResponse(&bridgev1.ListRecommendationsResponse{}), nil
	}
	return connect.NewResponse(&bridgev1.ListRecommendationsResponse{Recommendations: []*bridgev1.Recommendation{f.recs["rec-1"], f.recs["rec-2"]}}), nil
}

func (f *fakeAPI) GetStatus(_ context.Context, r *connect.Request[bridgev1.GetStatusRequest]) (*connect.Response[bridgev1.GetStatusResponse], error) {
	f.seen(r.Header())
	if f.empty {
		return connect.NewResponse(&bridgev1.GetStatusResponse{}), nil
	}
	f.mu.Lock()
	v := f.version
	f.mu.Unlock()
	now := timestamppb.Now()
	return connect.NewResponse(&bridgev1.GetStatusResponse{
		Versions: map[string]uint64{"orders": 2, "payments": v},
		Sidecars: []*bridgev1.SidecarStatus{
			{Service: "orders", Instance: "orders-7f3a", SentVersion: 2, AckedVersion: 2, LastSeen: now, Connected: true, SyncState: "SYNCED"},
			{Service: "payments", Instance: "payments-1c9e", SentVersion: v, AckedVersion: v, LastSeen: now, Connected: true, SyncState: "SYNCED"},
			{Service: "storefront", Instance: "storefront-42b0", SentVersion: 4, AckedVersion: 3, RejectedVersion: 4, RejectReason: "directive 0191: retry.budget_ratio 0.9 > 0.5", LastSeen: now, Connected: true, SyncState: "REJECTED"},
		},
	}), nil
}

func (f *fakeAPI) setState(id string, st bridgev1.RecommendationState, call string) (*bridgev1.Recommendation, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	if !ok {
		return nil, 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("recommendation %q not found", id))
	}
	f.calls = append(f.calls, call)
	f.version++
	r.State = st
	r.AppliedAt = timestamppb.Now()
	return r, f.version, nil
}

func (f *fakeAPI) ApplyRecommendation(_ context.Context, r *connect.Request[bridgev1.ApplyRecommendationRequest]) (*connect.Response[bridgev1.ApplyRecommendationResponse], error) {
	f.seen(r.Header())
	st := bridgev1.RecommendationState_RECOMMENDATION_STATE_ENFORCED
	if r.Msg.GetMode() == bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN {
		st = bridgev1.RecommendationState_RECOMMENDATION_STATE_DRY_RUN
	}
	rec, v, err := f.setState(r.Msg.GetId(), st, "Apply "+r.Msg.GetId()+" "+r.Msg.GetMode().String())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&bridgev1.ApplyRecommendationResponse{Recommendation: rec, Version: v}), nil
}

func (f *fakeAPI) RejectRecommendation(_ context.Context, r *connect.Request[bridgev1.RejectRecommendationRequest]) (*connect.Response[bridgev1.RejectRecommendationResponse], error) {
	f.seen(r.Header())
	rec, _, err := f.setState(r.Msg.GetId(), bridgev1.RecommendationState_RECOMMENDATION_STATE_REJECTED, "Reject "+r.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&bridgev1.RejectRecommendationResponse{Recommendation: rec}), nil
}

func (f *fakeAPI) Rollback(_ context.Context, r *connect.Request[bridgev1.RollbackRequest]) (*connect.Response[bridgev1.RollbackResponse], error) {
	f.seen(r.Header())
	rec, v, err := f.setState(r.Msg.GetId(), bridgev1.RecommendationState_RECOMMENDATION_STATE_ROLLED_BACK, "Rollback "+r.Msg.GetId())
	if err != nil {
		return nil, err
	}
	rec.StateReason = r.Msg.GetReason()
	return connect.NewResponse(&bridgev1.RollbackResponse{Recommendation: rec, Version: v}), nil
}

// Tap streams a communication, an execution and a tool event, then one
// communication event every 100 ms until the client goes away.
func (f *fakeAPI) Tap(ctx context.Context, r *connect.Request[bridgev1.TapRequest], st *connect.ServerStream[bridgev1.TapResponse]) error {
	f.seen(r.Header())
	f.mu.Lock()
	fail := f.tapFails > 0
	if fail {
		f.tapFails--
	}
	f.mu.Unlock()
	if fail {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("broker restarting"))
	}
	env := func(svc string, seq uint64) *bridgev1.Envelope {
		return &bridgev1.Envelope{EventId: fmt.Sprintf("0193-%04d", seq), OccurredAt: timestamppb.Now(), Source: &bridgev1.Source{Service: svc, Instance: svc + "-1"}, Sequence: seq}
	}
	comm := func(seq uint64) *bridgev1.TapResponse {
		ok := seq%3 != 0
		code := int32(200)
		if !ok {
			code = 503
		}
		return &bridgev1.TapResponse{Event: &bridgev1.TapResponse_Communication{Communication: &bridgev1.CommunicationIntelligenceEvent{
			Envelope: env("payments", seq), EventType: bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_RESPONSE_ANALYSIS, CorrelationId: "req-1",
			RequestContext:     &bridgev1.RequestContext{Method: "POST", Path: "/payments/charge", Route: "/payments/charge", SourceService: "orders"},
			PerformanceMetrics: &bridgev1.PerformanceMetrics{ResponseTime: d(4.2), StatusCode: code, TargetService: "payments", Success: ok},
		}}}
	}
	first := []*bridgev1.TapResponse{
		comm(1),
		{Event: &bridgev1.TapResponse_Execution{Execution: &bridgev1.ExecutionIntelligenceEvent{Envelope: env("catalog", 2), CorrelationId: "req-2",
			PreContext: &bridgev1.PreContext{ServiceName: "catalog", Operation: "tools/call"}, Kind: bridgev1.ExecutionKind_EXECUTION_KIND_MCP_TOOL_CALL,
			Mcp:     &bridgev1.McpToolCall{ToolName: "inventory.check"},
			Results: &bridgev1.ExecutionResults{Success: false, Error: "inventory backend timeout after 250 ms", ExecutionTime: d(250)}}}},
		{Event: &bridgev1.TapResponse_Tool{Tool: &bridgev1.ToolRegistrationEvent{Envelope: env("catalog", 3), EventType: bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_UPDATED,
			ToolInfo: &bridgev1.ToolInfo{Name: "inventory.check", ServiceSource: "catalog"}}}},
	}
	for _, m := range first {
		if err := st.Send(m); err != nil {
			return err
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for seq := uint64(4); ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := st.Send(comm(seq)); err != nil {
			return err
		}
	}
}

// mux serves the dashboard and the fake API as the control plane would.
func (f *fakeAPI) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle(bridgev1connect.NewIntelligenceServiceHandler(f))
	m.Handle(bridgev1connect.NewAdminServiceHandler(f))
	m.Handle("/ui/", Handler())
	m.Handle("/ui", Handler())
	return m
}
