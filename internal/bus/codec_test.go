package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/google/go-cmp/cmp"
)

var testSource = bus.NewSource(&bridgev1.Source{
	Service: "orders", Version: "v1.4.2", Instance: "orders-7c9d-abcde", Pod: "orders-7c9d-abcde", Namespace: "shop",
}, 0)

func trace() *bridgev1.TraceContext {
	return &bridgev1.TraceContext{TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", SpanId: "00f067aa0ba902b7", ParentSpanId: "a3ce929d0e0e4736", TraceFlags: 1}
}

func mustStruct(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sampleEvents returns one fully populated event of each of the four types.
func sampleEvents(t testing.TB) []bus.Event {
	now := time.Date(2026, 12, 6, 12, 0, 0, 123456789, time.UTC)
	return []bus.Event{
		&bridgev1.ServiceLifecycleEvent{
			Envelope:  testSource.Envelope(now, trace()),
			EventType: bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE,
			ServiceInfo: &bridgev1.ServiceInfo{
				Name: "orders", Version: "v1.4.2", Capabilities: []string{"orders.create", "orders.get"},
				Endpoints:    []*bridgev1.Endpoint{{Url: "http://10.0.0.5:8080/orders", Protocol: "http"}},
				Dependencies: []string{"inventory", "payments"},
			},
			IntelligenceMetadata: &bridgev1.LifecycleIntelligenceMetadata{
				DiscoveryMethod: bridgev1.DiscoveryMethod_DISCOVERY_METHOD_HOOK, RegistrationAutomatic: true, CapabilityExtraction: "declared",
			},
			Health: bridgev1.HealthStatus_HEALTH_STATUS_DEGRADED, PreviousHealth: bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY,
			HealthReason: "probe: 2 of 5 failed",
		},
		&bridgev1.ExecutionIntelligenceEvent{
			Envelope:      testSource.Envelope(now, trace()),
			EventType:     bridgev1.ExecutionEventType_EXECUTION_EVENT_TYPE_EXECUTION_COMPLETED,
			CorrelationId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
			PreContext: &bridgev1.PreContext{
				SessionId: "sess-42", ServiceName: "orders", Operation: "reserve_stock",
				Parameters: mustStruct(t, map[string]any{"sku": "A-1", "qty": 2.0}), Timestamp: timestamppb.New(now.Add(-time.Second)),
			},
			Results: &bridgev1.ExecutionResults{
				Success: false, Output: mustStruct(t, map[string]any{"reserved": false}), Error: "inventory unavailable",
				ExecutionTime: durationpb.New(830 * time.Millisecond), ErrorCode: "UNAVAILABLE",
			},
			IntelligenceInsights: &bridgev1.ExecutionInsights{
				OperationSuccessRate: 0.93, PerformanceTrend: bridgev1.PerformanceTrend_PERFORMANCE_TREND_DEGRADING,
				FailurePatterns: []string{"p-1"}, VsHistoricalAvg: 1.7,
			},
			Kind: bridgev1.ExecutionKind_EXECUTION_KIND_MCP_TOOL_CALL,
			Mcp:  &bridgev1.McpToolCall{ToolName: "inventory.check", ArgumentBytes: 31, SessionId: "mcp-s-1", JsonrpcErrorCode: -32603, ToolError: true, RequestId: "7"},
		},
		&bridgev1.CommunicationIntelligenceEvent{
			Envelope:      testSource.Envelope(now, trace()),
			EventType:     bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_RESPONSE_ANALYSIS,
			CorrelationId: "4bf92f3577b34da6a3ce929d0e0e4736",
			RequestContext: &bridgev1.RequestContext{
				Method: "GET", Path: "/orders/123?token=REDACTED", Route: "/orders/{id}", PayloadSize: 0,
				Headers: map[string]string{"user-agent": "curl/8", "authorization": "REDACTED"}, UserContext: "user:42",
				Protocol: bridgev1.Protocol_PROTOCOL_HTTP2, SourceService: "storefront",
			},
			PerformanceMetrics: &bridgev1.PerformanceMetrics{
				ResponseTime: durationpb.New(12 * time.Millisecond), ResponseSize: 512, StatusCode: 503, TargetService: "orders",
				Success: false, RpcCode: "unavailable", TimeToFirstByte: durationpb.New(11 * time.Millisecond),
				UpstreamEndpoint: "http://127.0.0.1:8081", Retries: 1, CacheHit: false, ProxyError: "upstream reset",
			},
			IntelligenceAnalysis: &bridgev1.IntelligenceAnalysis{
				PatternAnalysis:           mustStruct(t, map[string]any{"anomaly": 4.2}),
				OptimizationOpportunities: []string{"retry"},
				UserExperienceImpact:      &bridgev1.UserExperienceImpact{Level: bridgev1.ImpactLevel_IMPACT_LEVEL_FAILED, Reason: "503"},
			},
			SampleWeight: 1,
			PolicyDecisions: []*bridgev1.PolicyDecision{{
				DirectiveId: "0193a1b2-0000-7000-8000-000000000001", DirectiveVersion: 3,
				Action: bridgev1.PolicyAction_POLICY_ACTION_RETRIED, DryRun: true,
			}},
		},
		&bridgev1.ToolRegistrationEvent{
			Envelope:  testSource.Envelope(now, nil),
			EventType: bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_UPDATED,
			ToolInfo: &bridgev1.ToolInfo{
				Name: "catalog.search", ServiceSource: "catalog-mcp", Capabilities: []string{"read_only"},
				Signature:   mustStruct(t, map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}}),
				Metadata:    mustStruct(t, map[string]any{"title": "Search"}),
				Description: "Search the catalog", SchemaHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			},
			RegistrationMethod:   bridgev1.RegistrationMethod_REGISTRATION_METHOD_DISCOVERY,
			IntelligenceMetadata: &bridgev1.ToolIntelligenceMetadata{UsagePredictions: []string{"search"}, IntegrationOpportunities: []string{"shop/search"}},
		},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, ev := range sampleEvents(t) {
		t.Run(bus.TypeName(ev), func(t *testing.T) {
			rec, err := bus.Encode(ev)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got := string(rec.Key); got != "orders-7c9d-abcde" {
				t.Errorf("key = %q, want the source instance", got)
			}
			back, err := bus.Decode(rec)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(ev, back, protocmp.Transform()); diff != "" {
				t.Errorf("round trip changed the event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	good, err := bus.Encode(sampleEvents(t)[2])
	if err != nil {
		t.Fatal(err)
	}
	withHeader := func(key, val string) *kgo.Record {
		r := *good
		r.Headers = nil
		for _, h := range good.Headers {
			if h.Key != key {
				r.Headers = append(r.Headers, h)
			}
		}
		if val != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: key, Value: []byte(val)})
		}
		return &r
	}
	noID := proto.Clone(sampleEvents(t)[2]).(*bridgev1.CommunicationIntelligenceEvent)
	noID.Envelope.EventId = ""
	noIDValue, _ := proto.Marshal(noID)
	truncated := *good
	truncated.Value = good.Value[:len(good.Value)-7]

	cases := []struct {
		name   string
		rec    *kgo.Record
		want   error
		reason string
	}{
		{"unknown type", withHeader(bus.HeaderType, "omninode.bridge.v1.Nope"), bus.ErrUnknownType, "unknown_type"},
		{"missing type header", withHeader(bus.HeaderType, ""), bus.ErrUnknownType, "unknown_type"},
		{"type on wrong topic", func() *kgo.Record { r := *good; r.Topic = bus.TopicTools; return &r }(), bus.ErrTopicMismatch, "topic_mismatch"},
		{"future schema", withHeader(bus.HeaderSchema, "9"), bus.ErrSchemaVersion, "schema_version"},
		{"truncated payload", &truncated, bus.ErrMalformed, "malformed"},
		{"garbage payload", func() *kgo.Record { r := *good; r.Value = []byte{0xff, 0xff, 0xff, 0xff}; return &r }(), bus.ErrMalformed, "malformed"},
		{"missing event id", func() *kgo.Record { r := *good; r.Value = noIDValue; return &r }(), bus.ErrInvalid, "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bus.Decode(tc.rec)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode error = %v, want %v", err, tc.want)
			}
			if got := bus.Reason(err); got != tc.reason {
				t.Errorf("Reason = %q, want %q", got, tc.reason)
			}
			if err.Error() == "" {
				t.Error("empty error message")
			}
		})
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	t.Parallel()
	ev := proto.Clone(sampleEvents(t)[0]).(*bridgev1.ServiceLifecycleEvent)
	ev.Envelope.EventId = "not-a-uuid"
	if _, err := bus.Encode(ev); !errors.Is(err, bus.ErrInvalid) {
		t.Fatalf("Encode with bad id: err = %v, want ErrInvalid", err)
	}
	ev = proto.Clone(sampleEvents(t)[0]).(*bridgev1.ServiceLifecycleEvent)
	ev.ServiceInfo = nil
	if _, err := bus.Encode(ev); !errors.Is(err, bus.ErrInvalid) {
		t.Fatalf("Encode without service_info: err = %v, want ErrInvalid", err)
	}
}

func TestSourceSequenceAndIDs(t *testing.T) {
	t.Parallel()
	src := bus.NewSource(&bridgev1.Source{Service: "s", Instance: "i"}, 41)
	a, b := src.Envelope(time.Now(), nil), src.Envelope(time.Now(), nil)
	if a.Sequence != 42 || b.Sequence != 43 {
		t.Fatalf("sequences = %d, %d; want 42, 43", a.Sequence, b.Sequence)
	}
	if a.EventId == b.EventId || a.EventId[14] != '7' {
		t.Fatalf("ids %q %q: want distinct UUIDv7", a.EventId, b.EventId)
	}
}

// TestBrokerRoundTrip produces one record of each type through franz-go to a
// Kafka-protocol broker over TCP and consumes them back with a consumer
// group, checking every field and header.
func TestBrokerRoundTrip(t *testing.T) {
	t.Parallel()
	b, err := bus.StartBroker(bus.BrokerConfig{Listen: "127.0.0.1:0", Partitions: 3, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := bus.Config{Brokers: b.Addrs()}
	popts, err := cfg.ProducerOpts()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(popts...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	want := map[string]bus.Event{}
	for _, ev := range sampleEvents(t) {
		rec, err := bus.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", rec.Topic, err)
		}
		want[ev.GetEnvelope().GetEventId()] = ev
	}

	copts, err := cfg.ConsumerOpts("roundtrip-test", bus.Topics)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(copts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := 0
	for got < len(want) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d before timeout", got, len(want))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			ev, err := bus.Decode(r)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			w, ok := want[ev.GetEnvelope().GetEventId()]
			if !ok {
				t.Fatalf("unexpected event %s", ev.GetEnvelope().GetEventId())
			}
			if diff := cmp.Diff(w, ev, protocmp.Transform()); diff != "" {
				t.Errorf("%s changed on the bus (-want +got):\n%s", r.Topic, diff)
			}
			if h := bus.Header(r, bus.HeaderType); h != bus.TypeName(w) {
				t.Errorf("%s header = %q, want %q", bus.HeaderType, h, bus.TypeName(w))
			}
			if h := bus.Header(r, bus.HeaderSchema); h != "1" {
				t.Errorf("%s header = %q", bus.HeaderSchema, h)
			}
			if h := bus.Header(r, bus.HeaderEventID); h != w.GetEnvelope().GetEventId() {
				t.Errorf("%s header = %q", bus.HeaderEventID, h)
			}
			wantTP := bus.Traceparent(w.GetEnvelope().GetTrace())
			if h := bus.Header(r, bus.HeaderTraceparent); h != wantTP {
				t.Errorf("traceparent header = %q, want %q", h, wantTP)
			}
			if string(r.Key) != w.GetEnvelope().GetSource().GetInstance() {
				t.Errorf("key = %q", r.Key)
			}
			got++
		})
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}
