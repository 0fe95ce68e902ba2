package mesh

import (
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/consul/api"
	"github.com/omninode/bridge/controlplane/kv"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestControlPlaneRealBackends wires the control plane to PostgreSQL, Redis
// and Consul: an operator's mode change is audited in PostgreSQL and survives
// a restart of the control plane; the API answers through Redis.
func TestControlPlaneRealBackends(t *testing.T) {
	t.Parallel()
	pg := testenv.PostgreSQL(t)
	rd := testenv.Redis(t)
	consul := testenv.Consul(t)
	brokers := startBroker(t)
	start := func() (*ControlPlane, func()) {
		cfg := DefaultControlPlaneConfig()
		cfg.Base.Bus = bus.Config{Brokers: brokers}
		cfg.Base.Postgres, cfg.Base.Redis, cfg.Base.Consul = pg.DSN(), rd.Addr(), consul.Addr()
		cfg.Base.Listen, cfg.Base.Logger = "127.0.0.1:0", quietLog()
		m, err := NewControlPlane(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		ctx, cancel := contextWithCancel()
		go func() { done <- m.Run(ctx) }()
		return m, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("control plane stopped with %v", err)
			}
		}
	}
	m, stop := start()
	if m.CP.PG == nil || m.CP.Consul == nil {
		t.Fatal("PostgreSQL or Consul not used")
	}
	admin := bridgev1connect.NewAdminServiceClient(http.DefaultClient, m.URL())
	if _, err := admin.SetMode(t.Context(), connect.NewRequest(&bridgev1.SetModeRequest{Service: "orders",
		Kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE, Reason: "test"})); err != nil {
		t.Fatal(err)
	}
	intel := bridgev1connect.NewIntelligenceServiceClient(http.DefaultClient, m.URL())
	if _, err := intel.ListServices(t.Context(), connect.NewRequest(&bridgev1.ListServicesRequest{})); err != nil {
		t.Fatalf("list services through Redis: %v", err)
	}
	stop()

	m, stop = start()
	defer stop()
	admin = bridgev1connect.NewAdminServiceClient(http.DefaultClient, m.URL())
	eventually(t, "the API after a restart", 10*time.Second, func() bool {
		a, err := admin.ListAudit(t.Context(), connect.NewRequest(&bridgev1.ListAuditRequest{}))
		return err == nil && len(a.Msg.GetEntries()) > 0 && a.Msg.GetEntries()[0].GetActor() == "local"
	})
	if got := m.Engine.Mode(t.Context(), "orders", bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY); got != bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE {
		t.Errorf("mode after restart = %s, want enforce (kept in PostgreSQL)", got)
	}
}

// TestSidecarConsulRegistration: a sidecar given --consul registers its
// instance with a health check and deregisters it when it stops.
func TestSidecarConsulRegistration(t *testing.T) {
	t.Parallel()
	consul := testenv.Consul(t)
	client, err := kv.NewClient(consul.Addr())
	if err != nil {
		t.Fatal(err)
	}
	sc := DefaultSidecarConfig()
	sc.Base.Service, sc.Base.Version, sc.Base.Upstream = "mesh-test-svc", "v7", upstream(t)
	sc.Base.Listen, sc.Base.Admin, sc.Base.Hooks = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	sc.Base.SpoolDir, sc.Base.Logger = t.TempDir(), quietLog()
	sc.Consul = consul.Addr()
	s, err := NewSidecar(sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	registered := func() []*api.AgentService {
		svcs, err := client.Agent().ServicesWithFilter(`Service == "mesh-test-svc"`)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]*api.AgentService, 0, len(svcs))
		for _, v := range svcs {
			out = append(out, v)
		}
		return out
	}
	eventually(t, "the registration", 10*time.Second, func() bool { return len(registered()) == 1 })
	got := registered()[0]
	if got.Meta["version"] != "v7" || got.Port == 0 || got.ID == "" {
		t.Errorf("registration = %+v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sidecar stopped with %v", err)
	}
	if n := len(registered()); n != 0 {
		t.Errorf("%d instances still registered after the sidecar stopped", n)
	}
}
