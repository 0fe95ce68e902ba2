package check_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/omninode/bridge/controlplane/store"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/check"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The tests stop and start the shared PostgreSQL and Consul servers, so
// none of them runs in parallel.
func TestMain(m *testing.M) { testenv.Main(m) }

// statusServer is a control plane that answers GetStatus only (the unit
// seam: the real one is the intelligence API's).
type statusServer struct {
	bridgev1connect.UnimplementedIntelligenceServiceHandler
	sidecars []*bridgev1.SidecarStatus
	token    string
}

func (s *statusServer) GetStatus(_ context.Context, req *connect.Request[bridgev1.GetStatusRequest]) (*connect.Response[bridgev1.GetStatusResponse], error) {
	if s.token != "" && req.Header().Get("Authorization") != "Bearer "+s.token {
		return nil, connect.NewError(connect.CodeUnauthenticated, nil)
	}
	return connect.NewResponse(&bridgev1.GetStatusResponse{Sidecars: s.sidecars}), nil
}

func serveStatus(t *testing.T, h bridgev1connect.IntelligenceServiceHandler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(bridgev1connect.NewIntelligenceServiceHandler(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// env is the test environment's real servers, migrated like the control
// plane does it.
type env struct {
	kafka  *testenv.KafkaCluster
	pg     *testenv.Postgres
	redis  *testenv.RedisServer
	consul *testenv.ConsulAgent // nil when no consul binary is installed
	cfg    check.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{kafka: testenv.Kafka(t), pg: testenv.PostgreSQL(t), redis: testenv.Redis(t)}
	pool, err := pgxpool.New(t.Context(), e.pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(t.Context(), pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pool.Close()
	// A subtest, so that a missing consul binary skips only Consul.
	t.Run("consul-agent", func(t *testing.T) { e.consul = testenv.Consul(t) })

	e.cfg = check.DefaultConfig()
	e.cfg.Timeout = 2 * time.Second
	e.cfg.Bus = bus.Config{Brokers: e.kafka.Brokers()}
	e.cfg.Postgres = e.pg.DSN()
	e.cfg.Redis = e.redis.Addr()
	if e.consul != nil {
		e.cfg.Consul = e.consul.Addr()
	}
	e.cfg.Server = serveStatus(t, &statusServer{sidecars: []*bridgev1.SidecarStatus{
		{Service: "checkout", Instance: "a", SentVersion: 3, AckedVersion: 3, Connected: true, SyncState: "SYNCED"},
		{Service: "checkout", Instance: "b", SentVersion: 3, AckedVersion: 3, Connected: false, SyncState: "SYNCED"},
	}})
	return e
}

func run(t *testing.T, cfg check.Config) (check.Report, string) {
	t.Helper()
	r, err := check.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := r.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return r, out.String()
}

func result(t *testing.T, r check.Report, name string) check.Result {
	t.Helper()
	for _, res := range r.Results {
		if res.Name == name {
			return res
		}
	}
	t.Fatalf("no %q check in %+v", name, r.Results)
	return check.Result{}
}

// TestAllPass: against the real servers every check passes.
func TestAllPass(t *testing.T) {
	e := newEnv(t)
	r, out := run(t, e.cfg)
	t.Log("\n" + out)
	if !r.OK() {
		t.Fatalf("checks failed against healthy servers:\n%s", out)
	}
	for _, res := range r.Results {
		if res.Status == check.Skip && !(res.Name == check.NameConsul && e.consul == nil) {
			t.Errorf("%s skipped: %s", res.Name, res.Detail)
		}
	}
	if want := []string{"✔ bus —", "✔ bus topics —", "✔ postgresql —", "✔ postgresql migrations —", "✔ redis — PONG from " + e.redis.Addr(), "✔ sidecar sync — 2 sidecar(s) in sync (1 not connected now)", "all checks passed"}; !containsAll(out, want) {
		t.Errorf("output lacks one of %q:\n%s", want, out)
	}
	for _, topic := range bus.AllTopics {
		if !strings.Contains(result(t, r, check.NameTopics).Detail, topic) {
			t.Errorf("topics check does not name %s", topic)
		}
	}
	if strings.Contains(out, "postgres://") {
		t.Errorf("the output shows the DSN:\n%s", out)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestStopped: with one server stopped, its check fails with a hint that
// names where it looked, the others still pass, and the report is not OK.
func TestStopped(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name        string
		check       string
		stop, start func(testing.TB)
		hint        string
	}{
		{"kafka", check.NameBus, e.kafka.Stop, e.kafka.Start, "is Redpanda/Kafka running and reachable at " + e.kafka.Brokers()[0]},
		{"postgresql", check.NamePostgres, e.pg.Stop, e.pg.Start, "is PostgreSQL running and reachable at 127.0.0.1:"},
		{"redis", check.NameRedis, e.redis.Stop, e.redis.Start, "is redis-server running and reachable at " + e.redis.Addr()},
		{"consul", check.NameConsul, nil, nil, "is the Consul agent running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "consul" {
				if e.consul == nil {
					t.Skip("no consul binary (scripts/test-deps.sh builds one)")
				}
				tc.stop, tc.start = e.consul.Stop, e.consul.Start
			}
			tc.stop(t)
			defer tc.start(t)
			r, out := run(t, e.cfg)
			if r.OK() {
				t.Fatalf("report OK with %s stopped:\n%s", tc.name, out)
			}
			res := result(t, r, tc.check)
			if res.Status != check.Fail || !strings.Contains(res.Hint, tc.hint) {
				t.Errorf("%s: %+v, want a failure with hint %q", tc.check, res, tc.hint)
			}
			if !strings.Contains(out, "✘ "+tc.check+" — ") || !strings.Contains(out, "    hint: ") || !strings.Contains(out, "1 check(s) failed") {
				t.Errorf("output:\n%s", out)
			}
			for _, other := range r.Results {
				if other.Status == check.Fail && other.Name != tc.check {
					t.Errorf("%s failed too: %+v", other.Name, other)
				}
			}
		})
	}
}

// TestMissingTopicsAndMigrations: a bare broker and an empty database fail
// the topics and migrations checks with what to run.
func TestMissingTopicsAndMigrations(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, bus.TopicLifecycle, bus.TopicTools))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := check.DefaultConfig()
	cfg.Timeout = 2 * time.Second
	cfg.Bus = bus.Config{Brokers: c.ListenAddrs()}
	cfg.Postgres = testenv.PostgreSQL(t).DSN() // fresh and empty
	r, out := run(t, cfg)
	if res := result(t, r, check.NameBus); res.Status != check.Pass {
		t.Errorf("bus: %+v", res)
	}
	want := "missing: " + strings.Join([]string{bus.TopicExecution, bus.TopicCommunication, bus.TopicDeadLetter}, ", ")
	if res := result(t, r, check.NameTopics); res.Status != check.Fail || res.Detail != want || !strings.Contains(res.Hint, "omnibridge-topics Job") {
		t.Errorf("topics: %+v, want a failure %q", res, want)
	}
	if res := result(t, r, check.NameMigrations); res.Status != check.Fail || !strings.Contains(res.Detail, "no schema_migrations table") || !strings.Contains(res.Hint, "omnibridge controlplane") {
		t.Errorf("migrations: %+v", res)
	}
	t.Log("\n" + out)
}

// TestSidecarSync: out-of-sync sidecars fail; an API that does not serve
// the status, or no --server, is skipped with a note; a refused token fails.
func TestSidecarSync(t *testing.T) {
	base := check.DefaultConfig()
	base.Timeout = 2 * time.Second
	for _, tc := range []struct {
		name   string
		server string
		token  string
		status check.Status
		detail string
	}{
		{"stale and rejected", serveStatus(t, &statusServer{sidecars: []*bridgev1.SidecarStatus{
			{Service: "cart", Instance: "x", SentVersion: 4, AckedVersion: 2, SyncState: "STALE", Connected: true},
			{Service: "cart", Instance: "y", SentVersion: 4, RejectedVersion: 4, RejectReason: "timeout below floor", SyncState: "REJECTED", Connected: true},
		}}), "", check.Fail, "1 of 2 sidecar(s) rejected directives: cart/y (version 4: timeout below floor)"},
		{"stale", serveStatus(t, &statusServer{sidecars: []*bridgev1.SidecarStatus{
			{Service: "cart", Instance: "x", SentVersion: 4, AckedVersion: 2, SyncState: "STALE", Connected: true},
		}}), "", check.Fail, "1 of 1 sidecar(s) behind: cart/x (acked 2 of 4)"},
		{"unimplemented", serveStatus(t, bridgev1connect.UnimplementedIntelligenceServiceHandler{}), "", check.Skip, "does not serve the sync status"},
		{"unauthenticated", serveStatus(t, &statusServer{token: "s3cret"}), "wrong", check.Fail, "refused the request"},
		{"authenticated", serveStatus(t, &statusServer{token: "s3cret"}), "s3cret", check.Pass, "0 sidecar(s) in sync"},
		{"no server", "", "", check.Skip, "no --server given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Server, cfg.Token = tc.server, tc.token
			r, out := run(t, cfg)
			res := result(t, r, check.NameSidecars)
			if res.Status != tc.status || !strings.Contains(res.Detail, tc.detail) {
				t.Errorf("got %+v, want status %v with %q\n%s", res, tc.status, tc.detail, out)
			}
			if tc.status == check.Fail && res.Hint == "" {
				t.Error("failure without a hint")
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, mut := range []func(*check.Config){
		func(c *check.Config) { c.Server = "ftp://x" },
		func(c *check.Config) { c.Timeout = 0 },
		func(c *check.Config) { c.MigrationsTable = "" },
		func(c *check.Config) { c.Bus.Brokers = []string{"nohostport"} },
	} {
		cfg := check.DefaultConfig()
		mut(&cfg)
		if _, err := check.Run(t.Context(), cfg); err == nil {
			t.Errorf("config %+v: no error", cfg)
		}
	}
}
