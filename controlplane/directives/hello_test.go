package directives_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/omninode/bridge/controlplane/directives"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/sidecar/policy"
)

// TestHelloAnsweredAtOnce: the control plane answers an accepted hello at
// once with a heartbeat, even for a service with no directives (before,
// nothing came until the periodic heartbeat, a minute here), with the
// stream already counted; the snapshot follows when there is one.
func TestHelloAnsweredAtOnce(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cp := startCP(t, directives.NewMemoryKV(), "", nil, func(c *directives.Config) { c.Heartbeat = time.Minute })
			var opts []connect.ClientOption
			if p.grpc {
				opts = append(opts, connect.WithGRPC())
			}
			var protos http.Protocols
			protos.SetUnencryptedHTTP2(true)
			dc := bridgev1connect.NewDirectiveServiceClient(&http.Client{Transport: &http.Transport{Protocols: &protos}}, cp.url, opts...)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			st := dc.Sync(ctx)
			defer st.CloseResponse()
			defer st.CloseRequest()
			hello := &bridgev1.SidecarHello{Service: svc, Instance: "raw", AppliedVersion: 4}
			if err := st.Send(&bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Hello{Hello: hello}}); err != nil {
				t.Fatal(err)
			}
			first, err := st.Receive() // within ctx's 10 s, far below the heartbeat period
			if err != nil {
				t.Fatal(err)
			}
			if first.GetHeartbeat() == nil {
				t.Fatalf("first message %v, want a heartbeat", first)
			}
			if s := status(t, cp.srv)["raw"]; !s.GetConnected() || s.GetAckedVersion() != 4 {
				t.Errorf("status when answered %v, want connected with acked 4 from the hello", s)
			}

			v, err := cp.srv.Publish(t.Context(), svc, []*bridgev1.Directive{timeoutDirective(time.Second, time.Hour)}, 0)
			if err != nil {
				t.Fatal(err)
			}
			for {
				msg, err := st.Receive()
				if err != nil {
					t.Fatal(err)
				}
				if snap := msg.GetSnapshot(); snap != nil {
					if snap.GetVersion() != v {
						t.Errorf("snapshot version %d, want %d", snap.GetVersion(), v)
					}
					break
				}
			}
		})
	}
}

// TestEmptyServiceKeepsPersistedDirectives: a sidecar of a service the
// control plane has no directives for connects (it is answered) and keeps
// the directives it persisted, without acking or rejecting anything.
func TestEmptyServiceKeepsPersistedDirectives(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	d := timeoutDirective(time.Second, time.Hour)
	if err := policy.SaveState(state, &bridgev1.DirectiveSnapshot{Service: svc, Version: 7, Directives: []*bridgev1.Directive{d}}); err != nil {
		t.Fatal(err)
	}
	cp := startCP(t, directives.NewMemoryKV(), "", nil)
	sc := startSidecar(t, cp.url, "a", state, false)
	eventually(t, "connected", sc.client.Connected)
	time.Sleep(500 * time.Millisecond) // two heartbeats
	if !sc.client.Connected() {
		t.Error("stream dropped")
	}
	if sc.eng.Version() != 7 || len(sc.eng.Active()) != 1 || sc.eng.Active()[0] != d.GetId() {
		t.Errorf("version %d active %v, want 7 [%s] kept", sc.eng.Version(), sc.eng.Active(), d.GetId())
	}
	if s := status(t, cp.srv)["a"]; !s.GetConnected() || s.GetAckedVersion() != 7 || s.GetRejectedVersion() != 0 || s.GetSentVersion() != 0 {
		t.Errorf("status %v, want connected, acked 7 (from the hello), nothing sent or rejected", s)
	}
}
