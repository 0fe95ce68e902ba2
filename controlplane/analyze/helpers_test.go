package analyze

import (
	"fmt"
	"sync"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newTestAnalyzer(tb testing.TB, c *clock, mod func(*Config)) *Analyzer {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Now = c.Now
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// sources gives each service one sidecar source.
type sources map[string]*bus.Source

func (s sources) env(service string, at time.Time, trace *bridgev1.TraceContext) *bridgev1.Envelope {
	src := s[service]
	if src == nil {
		src = bus.NewSource(&bridgev1.Source{Service: service, Instance: service + "-0", Version: "1.0.0"}, 0)
		s[service] = src
	}
	return src.Envelope(at, trace)
}

// comm builds a communication event: source calls target's route.
type comm struct {
	source, target, route string
	at                    time.Time
	took, ttfb            time.Duration
	status                int32
	proxyErr              string
	trace, span, parent   string
	corr                  string
	weight                float64
}

func (s sources) comm(c comm) *bridgev1.CommunicationIntelligenceEvent {
	var tc *bridgev1.TraceContext
	if c.trace != "" {
		tc = &bridgev1.TraceContext{TraceId: c.trace, SpanId: c.span, ParentSpanId: c.parent, TraceFlags: 1}
	}
	env := s.env(c.target, c.at, tc)
	corr := c.corr
	if corr == "" {
		corr = c.trace
	}
	if corr == "" {
		corr = env.GetEventId()
	}
	if c.status == 0 {
		c.status = 200
	}
	if c.weight == 0 {
		c.weight = 1
	}
	pm := &bridgev1.PerformanceMetrics{ResponseTime: durationpb.New(c.took), StatusCode: c.status, TargetService: c.target,
		Success: c.status < 500 && c.proxyErr == "", ProxyError: c.proxyErr}
	if c.ttfb > 0 {
		pm.TimeToFirstByte = durationpb.New(c.ttfb)
	}
	return &bridgev1.CommunicationIntelligenceEvent{
		Envelope: env, EventType: bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_RESPONSE_ANALYSIS,
		CorrelationId:      corr,
		RequestContext:     &bridgev1.RequestContext{Method: "POST", Path: c.route, Route: c.route, SourceService: c.source, Protocol: bridgev1.Protocol_PROTOCOL_HTTP1},
		PerformanceMetrics: pm, SampleWeight: c.weight,
	}
}

func (s sources) exec(service, op string, at time.Time, took time.Duration, errMsg, session string) *bridgev1.ExecutionIntelligenceEvent {
	env := s.env(service, at, nil)
	return &bridgev1.ExecutionIntelligenceEvent{
		Envelope: env, EventType: bridgev1.ExecutionEventType_EXECUTION_EVENT_TYPE_EXECUTION_COMPLETED,
		CorrelationId: "c-" + env.GetEventId(), Kind: bridgev1.ExecutionKind_EXECUTION_KIND_HOOK,
		PreContext: &bridgev1.PreContext{ServiceName: service, Operation: op, SessionId: session, Timestamp: env.GetOccurredAt()},
		Results:    &bridgev1.ExecutionResults{Success: errMsg == "", Error: errMsg, ExecutionTime: durationpb.New(took)},
	}
}

func (s sources) toolCall(service, tool string, at time.Time, took time.Duration, ok bool) *bridgev1.ExecutionIntelligenceEvent {
	e := s.exec(service, "tools/call", at, took, "", "")
	e.Kind = bridgev1.ExecutionKind_EXECUTION_KIND_MCP_TOOL_CALL
	e.Mcp = &bridgev1.McpToolCall{ToolName: tool, ToolError: !ok}
	return e
}

func (s sources) tool(service, name, desc string, at time.Time, props ...string) *bridgev1.ToolRegistrationEvent {
	p := map[string]any{}
	for _, x := range props {
		p[x] = map[string]any{"type": "string"}
	}
	sig, err := structpb.NewStruct(map[string]any{"type": "object", "properties": p})
	if err != nil {
		panic(err)
	}
	return &bridgev1.ToolRegistrationEvent{Envelope: s.env(service, at, nil), EventType: bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_DISCOVERED,
		ToolInfo:           &bridgev1.ToolInfo{Name: name, ServiceSource: service, Description: desc, Signature: sig},
		RegistrationMethod: bridgev1.RegistrationMethod_REGISTRATION_METHOD_DISCOVERY}
}

func (s sources) lifecycle(service string, typ bridgev1.LifecycleEventType, at time.Time, caps, deps []string) *bridgev1.ServiceLifecycleEvent {
	return &bridgev1.ServiceLifecycleEvent{Envelope: s.env(service, at, nil), EventType: typ,
		ServiceInfo:          &bridgev1.ServiceInfo{Name: service, Version: "1.0.0", Capabilities: caps, Dependencies: deps},
		IntelligenceMetadata: &bridgev1.LifecycleIntelligenceMetadata{DiscoveryMethod: bridgev1.DiscoveryMethod_DISCOVERY_METHOD_HOOK},
		Health:               bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY}
}

func tid(i int) string    { return fmt.Sprintf("%032x", i+1) }
func sid(i, j int) string { return fmt.Sprintf("%08x%08x", i+1, j+1) }

// feed hands events to the analyzer by type.
func feed(tb testing.TB, a *Analyzer, evs ...bus.Event) {
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
