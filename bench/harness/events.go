package harness

import (
	"fmt"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/types/known/durationpb"
)

// communicationEvent builds the event a sidecar emits for one proxied
// request, stamped by src at the given time.
func communicationEvent(src *bus.Source, at time.Time, i int) *bridgev1.CommunicationIntelligenceEvent {
	status := int32(200)
	if i%50 == 0 {
		status = 503
	}
	return &bridgev1.CommunicationIntelligenceEvent{
		Envelope:      src.Envelope(at, &bridgev1.TraceContext{TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", SpanId: "00f067aa0ba902b7", TraceFlags: 1}),
		EventType:     bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_RESPONSE_ANALYSIS,
		CorrelationId: fmt.Sprintf("corr-%d", i),
		RequestContext: &bridgev1.RequestContext{
			Method: "GET", Path: fmt.Sprintf("/orders/%d", i%1000), Route: "/orders/{id}",
			Headers:  map[string]string{"user-agent": "bench/1"},
			Protocol: bridgev1.Protocol_PROTOCOL_HTTP1, SourceService: "storefront",
		},
		PerformanceMetrics: &bridgev1.PerformanceMetrics{
			ResponseTime: durationpb.New(time.Duration(1+i%20) * time.Millisecond), ResponseSize: 1024,
			StatusCode: status, TargetService: "orders", Success: status < 500,
			UpstreamEndpoint: "http://127.0.0.1:8081",
		},
		SampleWeight: 1,
	}
}

// benchSource is a fresh event source for producer p.
func benchSource(p int) *bus.Source {
	return bus.NewSource(&bridgev1.Source{
		Service: "orders", Version: "v1", Instance: fmt.Sprintf("orders-bench-%d-%d", p, time.Now().UnixNano()),
		Namespace: "bench",
	}, 0)
}
