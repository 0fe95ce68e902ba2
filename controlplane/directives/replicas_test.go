package directives_test

import (
	"context"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/directives"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// TestAnyReplicaServesAnySidecar: two replicas share the KV store; a
// version published on one reaches a sidecar connected to the other, and
// either replica's status shows every sidecar.
func TestAnyReplicaServesAnySidecar(t *testing.T) {
	t.Parallel()
	kv := directives.NewMemoryKV()
	a := startCP(t, kv, "", nil)
	b := startCP(t, kv, "", nil)
	onA := startSidecar(t, a.url, "on-a", "", false)
	onB := startSidecar(t, b.url, "on-b", "", true)
	v, err := a.srv.Publish(t.Context(), svc, []*bridgev1.Directive{timeoutDirective(time.Second, time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both sidecars at the new version", func() bool { return onA.eng.Version() == v && onB.eng.Version() == v })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := b.srv.WaitAcked(ctx, svc, v, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replica a's status showing the sidecar on b", func() bool {
		st := status(t, a.srv)
		return st["on-b"].GetAckedVersion() == v && st["on-a"].GetAckedVersion() == v
	})
}
