package controlplane

import (
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/kv"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
)

func TestCatalogEvents(t *testing.T) {
	t.Parallel()
	a := kv.CatalogService{Name: "pay", ID: "pay-1", Version: "1", Address: "10.0.0.1", Port: 80, Healthy: true}
	b := kv.CatalogService{Name: "pay", ID: "pay-2", Version: "1", Address: "10.0.0.2", Port: 80, Healthy: true}
	aSick := a
	aSick.Healthy = false
	type want struct {
		id     string
		typ    bridgev1.LifecycleEventType
		health bridgev1.HealthStatus
	}
	tests := []struct {
		name       string
		prev, next []kv.CatalogService
		want       []want
	}{
		{"first picture", nil, []kv.CatalogService{a}, []want{{"pay-1", bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY}}},
		{"unchanged", []kv.CatalogService{a}, []kv.CatalogService{a}, nil},
		{"health flips", []kv.CatalogService{a}, []kv.CatalogService{aSick}, []want{{"pay-1", bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE, bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY}}},
		{"one leaves", []kv.CatalogService{a, b}, []kv.CatalogService{a}, []want{{"pay-2", bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED, bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := catalogEvents(tt.prev, tt.next, time.Now())
			if len(evs) != len(tt.want) {
				t.Fatalf("%d events, want %d", len(evs), len(tt.want))
			}
			for i, w := range tt.want {
				e := evs[i]
				if e.GetEventType() != w.typ || e.GetHealth() != w.health ||
					e.GetIntelligenceMetadata().GetDiscoveryMethod() != bridgev1.DiscoveryMethod_DISCOVERY_METHOD_CONSUL ||
					e.GetServiceInfo().GetName() != "pay" || e.GetServiceInfo().GetEndpoints()[0].GetUrl() == "" {
					t.Fatalf("event %d = %v, want %+v", i, e, w)
				}
				if err := bus.Validate(e); err != nil {
					t.Fatalf("derived event is invalid: %v", err)
				}
			}
		})
	}
}
