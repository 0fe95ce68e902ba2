package ingest

import (
	"context"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
)

// LifecycleProcessor analyzes newly stored lifecycle events.
type LifecycleProcessor interface {
	ProcessLifecycle(ctx context.Context, evs []*bridgev1.ServiceLifecycleEvent) error
}

// ExecutionProcessor analyzes newly stored execution events.
type ExecutionProcessor interface {
	ProcessExecutions(ctx context.Context, evs []*bridgev1.ExecutionIntelligenceEvent) error
}

// CommunicationProcessor analyzes newly stored communication events.
type CommunicationProcessor interface {
	ProcessCommunications(ctx context.Context, evs []*bridgev1.CommunicationIntelligenceEvent) error
}

// ToolProcessor analyzes newly stored tool registration events.
type ToolProcessor interface {
	ProcessTools(ctx context.Context, evs []*bridgev1.ToolRegistrationEvent) error
}

// Processors routes events by type; a nil field discards that type. A
// processor is called concurrently from the fast lane and the routine
// lane's writers, so it must be safe for concurrent use; it gets only events
// the store has just newly inserted, never a replayed duplicate. A processor error is
// logged and counted; the events stay stored and the offsets are committed.
type Processors struct {
	Lifecycle     LifecycleProcessor
	Execution     ExecutionProcessor
	Communication CommunicationProcessor
	Tools         ToolProcessor
}

// Observer sees every newly stored event right after the store write, with
// the lane it took (critical for the fast lane). It is used for the live tap
// and the critical path, is called concurrently from several lanes, and
// must not block.
type Observer interface {
	Observe(ev bus.Event, critical bool)
}

// EventWriter is the store's idempotent batch write: it returns the ids of
// the events it newly inserted. An error means nothing may be assumed stored.
type EventWriter interface {
	WriteEvents(ctx context.Context, evs []bus.Event) (inserted map[string]bool, err error)
}

// dispatch hands evs (already filtered to newly inserted) to the processors,
// one call per type, and returns the first error per type joined.
func (p Processors) dispatch(ctx context.Context, evs []bus.Event) []error {
	var (
		lc []*bridgev1.ServiceLifecycleEvent
		ex []*bridgev1.ExecutionIntelligenceEvent
		co []*bridgev1.CommunicationIntelligenceEvent
		to []*bridgev1.ToolRegistrationEvent
	)
	for _, ev := range evs {
		switch e := ev.(type) {
		case *bridgev1.ServiceLifecycleEvent:
			lc = append(lc, e)
		case *bridgev1.ExecutionIntelligenceEvent:
			ex = append(ex, e)
		case *bridgev1.CommunicationIntelligenceEvent:
			co = append(co, e)
		case *bridgev1.ToolRegistrationEvent:
			to = append(to, e)
		}
	}
	var errs []error
	if len(lc) > 0 && p.Lifecycle != nil {
		errs = append(errs, p.Lifecycle.ProcessLifecycle(ctx, lc))
	}
	if len(ex) > 0 && p.Execution != nil {
		errs = append(errs, p.Execution.ProcessExecutions(ctx, ex))
	}
	if len(co) > 0 && p.Communication != nil {
		errs = append(errs, p.Communication.ProcessCommunications(ctx, co))
	}
	if len(to) > 0 && p.Tools != nil {
		errs = append(errs, p.Tools.ProcessTools(ctx, to))
	}
	return errs
}
