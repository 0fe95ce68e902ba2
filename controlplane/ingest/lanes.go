package ingest

import (
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
)

// maxRoutes bounds the latency norms kept; past it an arbitrary route is
// forgotten for each new one.
const maxRoutes = 10_000

// ewmaAlpha weighs the newest latency in a route's norm (about the last 40 events).
const ewmaAlpha = 0.05

// norm is a route's recent latency: an exponentially weighted mean.
type norm struct {
	mean float64 // nanoseconds
	n    int
}

// classifier decides the lane of each event. It keeps each route's latency
// norm; it is used by the poll loop only, so it needs no lock.
type classifier struct {
	factor     float64
	minSamples int
	floor      time.Duration
	routes     map[string]*norm
}

func newClassifier(cfg Config) *classifier {
	return &classifier{factor: cfg.LatencyFactor, minSamples: cfg.LatencyMinSamples, floor: cfg.LatencyFloor,
		routes: map[string]*norm{}}
}

// critical reports whether ev signals trouble and takes the fast lane.
func (c *classifier) critical(ev bus.Event) bool {
	switch e := ev.(type) {
	case *bridgev1.CommunicationIntelligenceEvent:
		pm := e.GetPerformanceMetrics()
		slow := c.slow(pm.GetTargetService()+" "+e.GetRequestContext().GetRoute(), pm.GetResponseTime().AsDuration())
		return !pm.GetSuccess() || pm.GetStatusCode() >= 500 || slow
	case *bridgev1.ExecutionIntelligenceEvent:
		pc := e.GetPreContext()
		slow := c.slow(pc.GetServiceName()+" "+pc.GetOperation(), e.GetResults().GetExecutionTime().AsDuration())
		return !e.GetResults().GetSuccess() || slow
	case *bridgev1.ServiceLifecycleEvent:
		switch e.GetHealth() {
		case bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY, bridgev1.HealthStatus_HEALTH_STATUS_DEGRADED:
			return true
		}
		return e.GetEventType() == bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED
	}
	return false
}

// slow updates the route's norm with d and reports whether d exceeds
// factor times the norm it had before (once the route has enough samples).
func (c *classifier) slow(route string, d time.Duration) bool {
	if d <= 0 {
		return false
	}
	r := c.routes[route]
	if r == nil {
		if len(c.routes) >= maxRoutes {
			for k := range c.routes {
				delete(c.routes, k)
				break
			}
		}
		r = &norm{}
		c.routes[route] = r
	}
	x := float64(d)
	slow := r.n >= c.minSamples && d >= c.floor && x > c.factor*r.mean
	if r.n == 0 {
		r.mean = x
	} else {
		r.mean += ewmaAlpha * (x - r.mean)
	}
	r.n++
	return slow
}
