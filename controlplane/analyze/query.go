package analyze

import (
	"fmt"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// Services returns the live service catalog, sorted by name.
func (a *Analyzer) Services() []*bridgev1.ServiceSummary { return a.eco.list(a.cfg.Now()) }

// Graph returns the dependency graph with edge figures over the window,
// causal hints and the latest impact analysis.
func (a *Analyzer) Graph(w bridgev1.Window) *bridgev1.GetServiceGraphResponse {
	a.sweep()
	d, _ := a.routes.windowOf(w)
	return a.eco.graph(a.cfg.Now(), d)
}

// RouteStats returns route statistics of a service (all when empty),
// busiest first, at most limit (0: 100).
func (a *Analyzer) RouteStats(service string, w bridgev1.Window, limit int) []*bridgev1.RouteStats {
	a.sweep()
	if limit <= 0 {
		limit = 100
	}
	return a.routes.list(service, a.cfg.Now(), w, limit)
}

// Route returns one route's statistics; false when it has no requests in
// the window.
func (a *Analyzer) Route(service, route string, w bridgev1.Window) (*bridgev1.RouteStats, bool) {
	a.sweep()
	st := a.routes.get(routeKey{service, route}, a.cfg.Now(), w)
	return st, st != nil
}

// Patterns returns failure patterns hitting a service (all when empty), most
// frequent first, at most limit (0: 100).
func (a *Analyzer) Patterns(service string, limit int) []*bridgev1.FailurePattern {
	a.sweep()
	if limit <= 0 {
		limit = 100
	}
	return a.pats.list(service, limit)
}

// Trace returns the call tree of a trace or correlation id.
func (a *Analyzer) Trace(id string) (*bridgev1.GetTraceResponse, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: id is required", ErrInvalid)
	}
	a.sweep()
	t, ok := a.traces.get(id)
	if !ok {
		return nil, fmt.Errorf("trace %q: %w", id, ErrNotFound)
	}
	return t, nil
}

// Tools returns the MCP tool registry of a service (all when empty).
func (a *Analyzer) Tools(service string) []*bridgev1.Tool { return a.tools.list(service, a.cfg.Now()) }

// Journeys returns recent journeys (at most limit, 0: 50) and drop-offs.
func (a *Analyzer) Journeys(limit int) *bridgev1.ListJourneysResponse {
	if limit <= 0 {
		limit = 50
	}
	return a.sess.list(limit)
}

// ExportRoutes returns every route's buckets for another replica to merge.
func (a *Analyzer) ExportRoutes() []RouteExport { return a.routes.export() }

// MergeRoutes merges another replica's route buckets: afterwards the route
// statistics answer as if this analyzer had seen both replicas' events.
func (a *Analyzer) MergeRoutes(in []RouteExport) error { return a.routes.merge(in) }
