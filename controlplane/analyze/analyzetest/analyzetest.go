// Package analyzetest builds an analyzer filled with a small, fully
// deterministic mesh, for tests of the APIs and the CLI on top of it. It is
// imported by tests only.
package analyzetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/analyze"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// T0 is the start of the fixture's traffic; Now is the fixture clock.
var (
	T0  = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	Now = T0.Add(10*time.Minute + 30*time.Second)
)

// FailedTrace is a trace id of the fixture in which shop → cart → pay failed
// because pay did.
var FailedTrace = TraceID(0)

// TraceID is the fixture's trace id number i.
func TraceID(i int) string { return fmt.Sprintf("%032x", i+1) }

func spanID(i, j int) string { return fmt.Sprintf("%08x%08x", i+1, j+1) }

// eventID makes deterministic UUIDs (version 7 layout) so outputs are stable.
func eventID(n int) string { return fmt.Sprintf("01890000-0000-7000-8000-%012x", n) }

type gen struct {
	n   int
	seq map[string]uint64
}

func (g *gen) env(service string, at time.Time, trace *bridgev1.TraceContext) *bridgev1.Envelope {
	g.n++
	g.seq[service]++
	return &bridgev1.Envelope{EventId: eventID(g.n), OccurredAt: timestamppb.New(at), Sequence: g.seq[service], Trace: trace, SchemaVersion: bus.SchemaVersion,
		Source: &bridgev1.Source{Service: service, Instance: service + "-0", Version: "1.4.2"}}
}

func (g *gen) comm(source, target, route string, at time.Time, took time.Duration, status int32, trace, span, parent string) *bridgev1.CommunicationIntelligenceEvent {
	var tc *bridgev1.TraceContext
	if trace != "" {
		tc = &bridgev1.TraceContext{TraceId: trace, SpanId: span, ParentSpanId: parent, TraceFlags: 1}
	}
	env := g.env(target, at, tc)
	corr := trace
	if corr == "" {
		corr = env.GetEventId()
	}
	return &bridgev1.CommunicationIntelligenceEvent{Envelope: env, EventType: bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_RESPONSE_ANALYSIS,
		CorrelationId:  corr,
		RequestContext: &bridgev1.RequestContext{Method: "POST", Path: route, Route: route, SourceService: source, Protocol: bridgev1.Protocol_PROTOCOL_HTTP1},
		PerformanceMetrics: &bridgev1.PerformanceMetrics{ResponseTime: durationpb.New(took), TimeToFirstByte: durationpb.New(took * 9 / 10),
			StatusCode: status, TargetService: target, Success: status < 500},
		SampleWeight: 1}
}

// Events returns the fixture's events in order.
func Events() []bus.Event {
	g := &gen{seq: map[string]uint64{}}
	var out []bus.Event
	for _, svc := range []struct {
		name       string
		caps, deps []string
	}{{"shop", []string{"shop.browse", "shop.checkout"}, []string{"cart"}}, {"cart", []string{"cart.add"}, []string{"pay"}}, {"pay", []string{"pay.charge"}, nil}} {
		out = append(out, &bridgev1.ServiceLifecycleEvent{Envelope: g.env(svc.name, T0, nil), EventType: bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED,
			ServiceInfo:          &bridgev1.ServiceInfo{Name: svc.name, Version: "1.4.2", Capabilities: svc.caps, Dependencies: svc.deps},
			IntelligenceMetadata: &bridgev1.LifecycleIntelligenceMetadata{DiscoveryMethod: bridgev1.DiscoveryMethod_DISCOVERY_METHOD_HOOK},
			Health:               bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY})
	}
	for _, t := range []struct{ svc, name, desc string }{{"pay", "refund_payment", "refund a payment"}, {"cart", "refundPayment", "refund"}, {"cart", "list_items", "list cart items"}} {
		sig, _ := structpb.NewStruct(map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}})
		out = append(out, &bridgev1.ToolRegistrationEvent{Envelope: g.env(t.svc, T0, nil), EventType: bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_DISCOVERED,
			ToolInfo: &bridgev1.ToolInfo{Name: t.name, ServiceSource: t.svc, Description: t.desc, Signature: sig, SchemaHash: fmt.Sprintf("%064x", len(t.name))}})
	}
	// The refund tool drifts: a new schema two minutes later.
	sig2, _ := structpb.NewStruct(map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}, "amount": map[string]any{"type": "number"}}})
	out = append(out, &bridgev1.ToolRegistrationEvent{Envelope: g.env("pay", T0.Add(2*time.Minute), nil), EventType: bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_UPDATED,
		ToolInfo: &bridgev1.ToolInfo{Name: "refund_payment", ServiceSource: "pay", Description: "refund a payment, partially", Signature: sig2, SchemaHash: fmt.Sprintf("%064x", 99)}})
	// Ten minutes of traffic: one trace every 10 s; every third fails at pay.
	for i := 0; i < 60; i++ {
		at := T0.Add(time.Duration(i) * 10 * time.Second)
		fail := i%3 == 0
		st := [3]int32{200, 200, 200}
		if fail {
			st = [3]int32{500, 502, 503}
		}
		tr := TraceID(i)
		out = append(out,
			g.comm("cart", "pay", "/charge", at.Add(20*time.Millisecond), time.Duration(40+i%5)*time.Millisecond, st[2], tr, spanID(i, 2), spanID(i, 1)),
			g.comm("shop", "cart", "/checkout", at.Add(10*time.Millisecond), time.Duration(70+i%5)*time.Millisecond, st[1], tr, spanID(i, 1), spanID(i, 0)),
			g.comm("", "shop", "/buy", at, time.Duration(100+i%5)*time.Millisecond, st[0], tr, spanID(i, 0), ""))
		exec := &bridgev1.ExecutionIntelligenceEvent{Envelope: g.env("pay", at.Add(time.Second), nil), EventType: bridgev1.ExecutionEventType_EXECUTION_EVENT_TYPE_EXECUTION_COMPLETED,
			CorrelationId: fmt.Sprintf("tool-%d", i), Kind: bridgev1.ExecutionKind_EXECUTION_KIND_MCP_TOOL_CALL,
			PreContext: &bridgev1.PreContext{ServiceName: "pay", Operation: "tools/call", SessionId: fmt.Sprintf("session-%d", i%4), Timestamp: timestamppb.New(at.Add(time.Second))},
			Results:    &bridgev1.ExecutionResults{Success: !fail, ExecutionTime: durationpb.New(time.Duration(12+i%3) * time.Millisecond)},
			Mcp:        &bridgev1.McpToolCall{ToolName: "refund_payment", ToolError: fail}}
		if fail {
			exec.Results.Error = fmt.Sprintf("refund %d rejected by ledger-%d.pay.svc:7000", 1000+i, i%3)
			exec.Results.ErrorCode = "FAILED_PRECONDITION"
		}
		out = append(out, exec)
	}
	return out
}

// New returns an analyzer with the fixture's events analyzed and its clock
// stopped at Now.
func New(tb testing.TB) *analyze.Analyzer {
	tb.Helper()
	cfg := analyze.DefaultConfig()
	cfg.Now = func() time.Time { return Now }
	a, err := analyze.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	Feed(tb, a, Events()...)
	a.OnCatalog([]analyze.CatalogService{{Name: "ledger", Version: "7.0.1", Address: "ledger.pay.svc:7000", Healthy: true}})
	return a
}

// Feed hands events to an analyzer by type.
func Feed(tb testing.TB, a *analyze.Analyzer, evs ...bus.Event) {
	tb.Helper()
	for _, ev := range evs {
		var err error
		switch e := ev.(type) {
		case *bridgev1.ServiceLifecycleEvent:
			err = a.ProcessLifecycle(tb.Context(), []*bridgev1.ServiceLifecycleEvent{e})
		case *bridgev1.ExecutionIntelligenceEvent:
			err = a.ProcessExecutions(tb.Context(), []*bridgev1.ExecutionIntelligenceEvent{e})
		case *bridgev1.CommunicationIntelligenceEvent:
			err = a.ProcessCommunications(tb.Context(), []*bridgev1.CommunicationIntelligenceEvent{e})
		case *bridgev1.ToolRegistrationEvent:
			err = a.ProcessTools(tb.Context(), []*bridgev1.ToolRegistrationEvent{e})
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}
