package directives_test

import (
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/kv"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/testenv"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestConsulDesiredStateAndOverride: with desired state in a real Consul
// agent, a version published on one replica reaches a sidecar of another,
// and an operator override written to Consul takes precedence.
func TestConsulDesiredStateAndOverride(t *testing.T) {
	t.Parallel()
	agent := testenv.Consul(t)
	client, err := kv.NewClient(agent.Addr())
	if err != nil {
		t.Fatal(err)
	}
	store := kv.NewConsul(client)
	a := startCP(t, store, "", nil)
	b := startCP(t, store, "", nil)
	sc := startSidecar(t, b.url, "pod-1", "", false)
	v, err := a.srv.Publish(t.Context(), svc, []*bridgev1.Directive{timeoutDirective(time.Second, time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the version through consul", func() bool { return sc.eng.Version() >= v })
	ov, _ := protojson.Marshal(&bridgev1.Directive{Spec: &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(7 * time.Second)}}})
	if err := store.Put(t.Context(), "omnibridge/directives/overrides/"+svc+"/timeout", ov); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the consul override at the sidecar", func() bool {
		ds := sc.eng.Snapshot().GetDirectives()
		return len(ds) == 1 && ds[0].GetTimeout().GetRequestTimeout().AsDuration() == 7*time.Second
	})
}
