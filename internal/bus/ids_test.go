package bus

import (
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// TestSealNumbersOnlyValidEvents: an event refused by validation takes no
// sequence number (it would be a gap counted as a lost event); a valid one
// takes the next.
func TestSealNumbersOnlyValidEvents(t *testing.T) {
	src := NewSource(&bridgev1.Source{Service: "orders", Instance: "i-1"}, 41)
	bad := &bridgev1.ExecutionIntelligenceEvent{Envelope: src.Draft(time.Now(), nil)} // no correlation id
	if err := src.Seal(bad); err == nil {
		t.Fatal("invalid event sealed")
	}
	if src.Sequence() != 41 || bad.GetEnvelope().GetSequence() != 0 {
		t.Fatalf("a refused event took number %d (source at %d)", bad.GetEnvelope().GetSequence(), src.Sequence())
	}
	good := &bridgev1.ServiceLifecycleEvent{
		Envelope:    src.Draft(time.Now(), nil),
		EventType:   bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED,
		ServiceInfo: &bridgev1.ServiceInfo{Name: "orders"},
	}
	if err := src.Seal(good); err != nil {
		t.Fatal(err)
	}
	if good.GetEnvelope().GetSequence() != 42 || src.Sequence() != 42 {
		t.Fatalf("valid event numbered %d, source at %d; want 42", good.GetEnvelope().GetSequence(), src.Sequence())
	}
}
