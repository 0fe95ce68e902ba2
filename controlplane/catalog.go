package controlplane

import (
	"strconv"
	"time"

	"github.com/omninode/bridge/controlplane/kv"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// catalogSource is the envelope source of lifecycle events the control plane
// derives from the Consul catalog.
var catalogSource = &bridgev1.Source{Service: "omnibridge-controlplane", Instance: "consul-catalog"}

// catalogEvents turns a catalog change into lifecycle events with discovery
// method consul: SERVICE_STARTED for a new instance, SERVICE_HEALTH_CHANGE
// when its health flips, SERVICE_STOPPED when it leaves the catalog. They go
// to the lifecycle processor directly (each replica watches the catalog
// itself), not to the bus.
func catalogEvents(prev, next []kv.CatalogService, now time.Time) []*bridgev1.ServiceLifecycleEvent {
	old := map[string]kv.CatalogService{}
	for _, s := range prev {
		old[s.Name+"/"+s.ID] = s
	}
	var out []*bridgev1.ServiceLifecycleEvent
	mk := func(s kv.CatalogService, t bridgev1.LifecycleEventType, h, ph bridgev1.HealthStatus) {
		out = append(out, &bridgev1.ServiceLifecycleEvent{
			Envelope: &bridgev1.Envelope{EventId: bus.NewEventID(), OccurredAt: timestamppb.New(now),
				Source: catalogSource, Sequence: 1, SchemaVersion: bus.SchemaVersion},
			EventType: t,
			ServiceInfo: &bridgev1.ServiceInfo{Name: s.Name, Version: s.Version, Endpoints: []*bridgev1.Endpoint{
				{Url: "http://" + s.Address + ":" + strconv.Itoa(s.Port), Protocol: "http"}}},
			IntelligenceMetadata: &bridgev1.LifecycleIntelligenceMetadata{
				DiscoveryMethod: bridgev1.DiscoveryMethod_DISCOVERY_METHOD_CONSUL, RegistrationAutomatic: true},
			Health: h, PreviousHealth: ph, HealthReason: "consul health checks",
		})
	}
	health := func(ok bool) bridgev1.HealthStatus {
		if ok {
			return bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY
		}
		return bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY
	}
	for _, s := range next {
		k := s.Name + "/" + s.ID
		p, seen := old[k]
		delete(old, k)
		switch {
		case !seen:
			mk(s, bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, health(s.Healthy), bridgev1.HealthStatus_HEALTH_STATUS_UNSPECIFIED)
		case p.Healthy != s.Healthy:
			mk(s, bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE, health(s.Healthy), health(p.Healthy))
		}
	}
	for _, s := range old {
		mk(s, bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED, health(false), health(s.Healthy))
	}
	return out
}
