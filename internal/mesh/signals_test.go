package mesh

import (
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/directives"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// TestSignalPathDeduplicates: a critical event arriving through the bus is
// handed to the engine once, not when the stream already delivered its id,
// and at most once per service and second; routine events are ignored.
func TestSignalPathDeduplicates(t *testing.T) {
	t.Parallel()
	cfg := directives.DefaultConfig()
	cfg.KV = directives.NewMemoryKV()
	dsrv, err := directives.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := newSignalPath(dsrv)
	ev := func(id, service string) *bridgev1.CommunicationIntelligenceEvent {
		e := comm(service, "POST", "/charge", "", 503, 5, time.Now())
		e.Envelope.EventId = id
		return e
	}
	dsrv.SeenEvent("already-on-the-stream")
	p.Observe(ev("already-on-the-stream", "payments"), true)
	p.Observe(ev("routine", "payments"), false)
	if n := len(p.queue); n != 0 {
		t.Fatalf("queued %d, want 0 (a duplicate and a routine event)", n)
	}
	p.Observe(ev("a", "payments"), true)
	p.Observe(ev("a", "payments"), true) // replayed
	p.Observe(ev("b", "payments"), true) // same service within a second
	p.Observe(ev("c", "orders"), true)
	if n := len(p.queue); n != 2 {
		t.Fatalf("queued %d, want 2 (payments once, orders once)", n)
	}
	s := <-p.queue
	if s.service != "payments" || s.sig.GetEventId() != "a" || s.sig.GetKind() != bridgev1.SignalKind_SIGNAL_KIND_ERROR_BURST || s.sig.GetRoute() != "/charge" {
		t.Errorf("signal = %s %v", s.service, s.sig)
	}
	if !dsrv.SeenEvent("a") {
		t.Error("the bus copy's id is not remembered for the stream's copy")
	}
}
