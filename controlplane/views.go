package controlplane

import (
	"context"

	"github.com/omninode/bridge/controlplane/cache"
	"github.com/omninode/bridge/controlplane/ingest"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
)

// invalidatingWriter writes to the store, then invalidates the cached views
// the newly stored events change: perf:{service}:{operation} for
// executions, service:meta:{service} for lifecycle events.
type invalidatingWriter struct {
	w     ingest.EventWriter
	cache *cache.Manager
}

func (iw invalidatingWriter) WriteEvents(ctx context.Context, evs []bus.Event) (map[string]bool, error) {
	inserted, err := iw.w.WriteEvents(ctx, evs)
	if err != nil {
		return nil, err
	}
	perf, meta := map[string]bool{}, map[string]bool{}
	for _, ev := range evs {
		if !inserted[ev.GetEnvelope().GetEventId()] {
			continue
		}
		switch e := ev.(type) {
		case *bridgev1.ExecutionIntelligenceEvent:
			perf[cache.Perf.Key(e.GetPreContext().GetServiceName(), e.GetPreContext().GetOperation())] = true
		case *bridgev1.ServiceLifecycleEvent:
			meta[cache.ServiceMeta.Key(e.GetServiceInfo().GetName())] = true
		}
	}
	iw.cache.Invalidate(ctx, cache.Perf, keys(perf)...)
	iw.cache.Invalidate(ctx, cache.ServiceMeta, keys(meta)...)
	return inserted, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
