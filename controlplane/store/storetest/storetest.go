// Package storetest makes realistic intelligence events for tests and
// benchmarks of the pipeline, and measures the store's write throughput. It
// is imported by tests and the bench harness only, never by production code.
package storetest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Gen makes valid events from a fixed set of sources with increasing
// per-source sequence numbers. Not safe for concurrent use.
type Gen struct {
	// Now stamps occurred_at; default time.Now.
	Now     func() time.Time
	sources []*bus.Source
	n       int
}

// NewGen returns a generator over the given number of sidecar sources
// ("svc-<i%4>" instances "inst-<i>").
func NewGen(sources int) *Gen {
	g := &Gen{Now: time.Now}
	for i := range sources {
		g.sources = append(g.sources, bus.NewSource(&bridgev1.Source{
			Service: "svc-" + strconv.Itoa(i%4), Instance: "inst-" + strconv.Itoa(i), Version: "1.0.0"}, 0))
	}
	return g
}

// Next returns the next event, cycling through the four types (mostly
// executions and communications, as real traffic).
func (g *Gen) Next() bus.Event {
	src := g.sources[g.n%len(g.sources)]
	g.n++
	env := src.Envelope(g.Now(), &bridgev1.TraceContext{
		TraceId: fmt.Sprintf("%032x", g.n), SpanId: fmt.Sprintf("%016x", g.n), TraceFlags: 1})
	switch g.n % 10 {
	case 0:
		return Lifecycle(env, bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY)
	case 1:
		return Tool(env, "tool-"+strconv.Itoa(g.n%7))
	case 2, 3, 4, 5:
		return Execution(env, "op-"+strconv.Itoa(g.n%5), time.Duration(g.n%7+5)*time.Millisecond, true)
	default:
		return Communication(env, "/route/"+strconv.Itoa(g.n%6), 200, time.Duration(g.n%7+5)*time.Millisecond)
	}
}

// Batch returns the next n events.
func (g *Gen) Batch(n int) []bus.Event {
	out := make([]bus.Event, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// Execution builds an execution event.
func Execution(env *bridgev1.Envelope, op string, took time.Duration, ok bool) *bridgev1.ExecutionIntelligenceEvent {
	return &bridgev1.ExecutionIntelligenceEvent{
		Envelope:      env,
		EventType:     bridgev1.ExecutionEventType_EXECUTION_EVENT_TYPE_EXECUTION_COMPLETED,
		CorrelationId: "corr-" + env.GetEventId(),
		Kind:          bridgev1.ExecutionKind_EXECUTION_KIND_HOOK,
		PreContext: &bridgev1.PreContext{ServiceName: env.GetSource().GetService(), Operation: op,
			SessionId: "s-1", Timestamp: env.GetOccurredAt()},
		Results: &bridgev1.ExecutionResults{Success: ok, ExecutionTime: durationpb.New(took)},
	}
}

// Communication builds a response-analysis communication event.
func Communication(env *bridgev1.Envelope, route string, status int32, took time.Duration) *bridgev1.CommunicationIntelligenceEvent {
	return &bridgev1.CommunicationIntelligenceEvent{
		Envelope:      env,
		EventType:     bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_RESPONSE_ANALYSIS,
		CorrelationId: "corr-" + env.GetEventId(),
		RequestContext: &bridgev1.RequestContext{Method: "GET", Path: route, Route: route, PayloadSize: 1024,
			Protocol: bridgev1.Protocol_PROTOCOL_HTTP1, SourceService: "client", Headers: map[string]string{"accept": "*/*"}},
		PerformanceMetrics: &bridgev1.PerformanceMetrics{ResponseTime: durationpb.New(took), ResponseSize: 1024,
			StatusCode: status, TargetService: env.GetSource().GetService(), Success: status < 500},
		SampleWeight: 1,
	}
}

// Lifecycle builds a health-change lifecycle event.
func Lifecycle(env *bridgev1.Envelope, h bridgev1.HealthStatus) *bridgev1.ServiceLifecycleEvent {
	return &bridgev1.ServiceLifecycleEvent{
		Envelope:    env,
		EventType:   bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE,
		ServiceInfo: &bridgev1.ServiceInfo{Name: env.GetSource().GetService(), Version: "1.0.0"},
		Health:      h,
	}
}

// Tool builds a tool registration event.
func Tool(env *bridgev1.Envelope, name string) *bridgev1.ToolRegistrationEvent {
	return &bridgev1.ToolRegistrationEvent{
		Envelope:  env,
		EventType: bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_REGISTERED,
		ToolInfo: &bridgev1.ToolInfo{Name: name, ServiceSource: env.GetSource().GetService(),
			Description: "a tool", SchemaHash: "abc", Capabilities: []string{"read_only"}},
	}
}

// Writer is the store's write method.
type Writer interface {
	WriteEvents(ctx context.Context, evs []bus.Event) (map[string]bool, error)
}

// WriteThroughput writes total fresh events in batches of batch from
// `writers` concurrent goroutines and returns the stored rows per second.
// Event generation happens before the clock starts.
func WriteThroughput(ctx context.Context, w Writer, total, batch, writers int) (float64, error) {
	g := NewGen(64)
	batches := make([][]bus.Event, 0, total/batch+1)
	for left := total; left > 0; left -= batch {
		batches = append(batches, g.Batch(min(batch, left)))
	}
	work := make(chan []bus.Event, len(batches))
	for _, b := range batches {
		work <- b
	}
	close(work)
	errs := make(chan error, writers)
	counts := make(chan int, writers)
	start := time.Now()
	for range writers {
		go func() {
			n := 0
			for b := range work {
				ins, err := w.WriteEvents(ctx, b)
				if err != nil {
					errs <- err
					counts <- n
					return
				}
				n += len(ins)
			}
			errs <- nil
			counts <- n
		}()
	}
	stored := 0
	var firstErr error
	for range writers {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
		stored += <-counts
	}
	el := time.Since(start)
	if firstErr != nil {
		return 0, firstErr
	}
	if stored != total {
		return 0, fmt.Errorf("stored %d of %d events", stored, total)
	}
	return float64(stored) / el.Seconds(), nil
}

// Stamp is a helper for tests: an envelope for src at t.
func Stamp(src *bus.Source, t time.Time) *bridgev1.Envelope { return src.Envelope(t, nil) }
