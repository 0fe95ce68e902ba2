package directives_test

import (
	"strings"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/directives"
	"github.com/omninode/bridge/sidecar/policy"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cfg := directives.DefaultConfig()
	err := cfg.Validate()
	for _, field := range []string{"control_plane", "service", "instance"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
	cfg.ControlPlane, cfg.Service, cfg.Instance = "http://127.0.0.1:1", "orders", "a"
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	cfg.BackoffMax = time.Millisecond
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "backoff") {
		t.Errorf("bad backoff accepted: %v", err)
	}
}

// TestLoadPersistedWithoutControlPlane: a sidecar starting with no control
// plane reachable enforces its persisted snapshot, minus what expired.
func TestLoadPersistedWithoutControlPlane(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	live := &bridgev1.Directive{Id: "live", Scope: &bridgev1.Scope{Service: "orders"}, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE,
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		Spec:      &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(time.Second)}}}
	gone := &bridgev1.Directive{Id: "gone", Scope: &bridgev1.Scope{Service: "orders"}, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE,
		ExpiresAt: timestamppb.New(time.Now().Add(-time.Minute)),
		Spec:      &bridgev1.Directive_RateLimit{RateLimit: &bridgev1.RateLimitPolicy{RequestsPerSecond: 1, Burst: 1}}}
	if err := policy.SaveState(dir, &bridgev1.DirectiveSnapshot{Service: "orders", Version: 9, Directives: []*bridgev1.Directive{live, gone}}); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.New(policy.Config{Service: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := directives.DefaultConfig()
	cfg.ControlPlane, cfg.Service, cfg.Instance, cfg.StateDir = "http://127.0.0.1:1", "orders", "a", dir
	c, err := directives.New(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LoadPersisted(); err != nil {
		t.Fatal(err)
	}
	if eng.Version() != 9 || len(eng.Active()) != 1 || eng.Active()[0] != "live" {
		t.Errorf("version %d active %v, want 9 [live]", eng.Version(), eng.Active())
	}
	// Signals never block, even with no stream to carry them.
	for range 1000 {
		c.SendSignal(&bridgev1.CriticalSignal{EventId: "x"})
	}
}
