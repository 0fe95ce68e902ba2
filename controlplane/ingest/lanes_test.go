package ingest

import (
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/store/storetest"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestClassifier(t *testing.T) {
	t.Parallel()
	src := bus.NewSource(&bridgev1.Source{Service: "pay", Instance: "pay-1"}, 0)
	env := func() *bridgev1.Envelope { return src.Envelope(time.Now(), nil) }
	c := newClassifier(DefaultConfig())
	for range 30 { // a norm of 20ms on /pay
		if c.critical(storetest.Communication(env(), "/pay", 200, 20*time.Millisecond)) {
			t.Fatal("a routine event took the fast lane")
		}
	}
	failedExec := storetest.Execution(env(), "charge", time.Millisecond, false)
	tests := []struct {
		name string
		ev   bus.Event
		want bool
	}{
		{"ok", storetest.Communication(env(), "/pay", 200, 25*time.Millisecond), false},
		{"5xx", storetest.Communication(env(), "/pay", 503, 20*time.Millisecond), true},
		{"slow", storetest.Communication(env(), "/pay", 200, 500*time.Millisecond), true},
		{"slow but new route", storetest.Communication(env(), "/new", 200, 500*time.Millisecond), false},
		{"failed execution", failedExec, true},
		{"ok execution", storetest.Execution(env(), "charge", time.Millisecond, true), false},
		{"unhealthy", storetest.Lifecycle(env(), bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY), true},
		{"degraded", storetest.Lifecycle(env(), bridgev1.HealthStatus_HEALTH_STATUS_DEGRADED), true},
		{"healthy", storetest.Lifecycle(env(), bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY), false},
		{"tool", storetest.Tool(env(), "refund"), false},
	}
	stopped := storetest.Lifecycle(env(), bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY)
	stopped.EventType = bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED
	tests = append(tests, struct {
		name string
		ev   bus.Event
		want bool
	}{"stopped", stopped, true})
	for _, tt := range tests {
		if got := c.critical(tt.ev); got != tt.want {
			t.Errorf("%s: critical = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTrackerCommitsOnlyContiguousDone(t *testing.T) {
	t.Parallel()
	tr := newTracker()
	tr.assign(map[string][]int32{"a": {0}})
	var toks []token
	for off := int64(10); off < 15; off++ {
		toks = append(toks, tr.add(&kgo.Record{Topic: "a", Partition: 0, Offset: off, LeaderEpoch: 3}))
	}
	untracked := tr.add(&kgo.Record{Topic: "b", Partition: 0, Offset: 1})
	if untracked.gen != 0 {
		t.Fatal("a record of an unassigned partition is tracked")
	}
	tr.done([]token{toks[1], toks[2], untracked}) // 11, 12 done; 10 not yet
	if offs := tr.committable(nil); offs != nil {
		t.Fatalf("committable %v before offset 10 is done", offs)
	}
	tr.done([]token{toks[0]})
	offs := tr.committable(nil)
	if eo := offs["a"][0]; eo.Offset != 13 || eo.Epoch != 3 {
		t.Fatalf("commit %+v, want offset 13", eo)
	}
	if offs := tr.committable(nil); offs != nil {
		t.Fatalf("the same offset offered twice: %v", offs)
	}
	tr.failed(map[string]map[int32]kgo.EpochOffset{"a": {0: {Epoch: 3, Offset: 13}}})
	if offs := tr.committable(nil); offs["a"][0].Offset != 13 {
		t.Fatalf("a failed commit is not offered again: %v", offs)
	}
	// Revoked and reassigned: old tokens no longer count.
	tr.revoke(map[tp]bool{{"a", 0}: true})
	tr.assign(map[string][]int32{"a": {0}})
	tr.done([]token{toks[3], toks[4]})
	if offs := tr.committable(nil); offs != nil {
		t.Fatalf("tokens of a revoked assignment committed: %v", offs)
	}
}
