package controlplane_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane"
	"github.com/omninode/bridge/controlplane/cache"
	"github.com/omninode/bridge/controlplane/kv"
	"github.com/omninode/bridge/controlplane/store"
	"github.com/omninode/bridge/controlplane/store/storetest"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/net/http2"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// lifecycles records lifecycle events handed to the processor.
type lifecycles struct {
	mu  sync.Mutex
	evs []*bridgev1.ServiceLifecycleEvent
	n   int
}

func (l *lifecycles) ProcessLifecycle(_ context.Context, evs []*bridgev1.ServiceLifecycleEvent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, evs...)
	return nil
}

func (l *lifecycles) ProcessExecutions(_ context.Context, evs []*bridgev1.ExecutionIntelligenceEvent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += len(evs)
	return nil
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func produce(t testing.TB, brokers []string, evs []bus.Event) {
	t.Helper()
	opts, _ := bus.Config{Brokers: brokers}.ProducerOpts()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		if recs[i], err = bus.Encode(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// End to end through real PostgreSQL, Redis, Consul and broker: N events
// become N rows, field by field right; the cached views match PostgreSQL,
// also while Redis is down; the Consul catalog becomes the service picture.
// Not parallel: it stops the shared Consul agent.
func TestEndToEnd(t *testing.T) {
	kafka, pg, rds, consul := testenv.Kafka(t), testenv.PostgreSQL(t), testenv.Redis(t), testenv.Consul(t)
	cfg := controlplane.DefaultConfig()
	cfg.Bus = bus.Config{Brokers: kafka.Brokers()}
	cfg.Postgres, cfg.Redis, cfg.Consul = pg.DSN(), rds.Addr(), consul.Addr()
	cfg.Listen = "127.0.0.1:0"
	cfg.BatchSize, cfg.BatchWait = 500, 20*time.Millisecond
	cfg.Registry = prometheus.NewRegistry()
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(t.Context())
	cp, err := controlplane.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &lifecycles{}
	cp.Processors.Lifecycle, cp.Processors.Execution = rec, rec
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	const n = 3000
	g := storetest.NewGen(12)
	evs := g.Batch(n)
	produce(t, kafka.Brokers(), evs)
	pool := cp.PG.Pool()
	rows := func() int {
		var c int
		_ = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM execution_intelligence) + (SELECT count(*) FROM communication_intelligence)
			+ (SELECT count(*) FROM service_lifecycle_events) + (SELECT count(*) FROM tool_registration_events)`).Scan(&c)
		return c
	}
	waitFor(t, 60*time.Second, "all rows", func() bool { return rows() >= n })
	if got := rows(); got != n {
		t.Fatalf("rows = %d, want %d", got, n)
	}
	// Field by field for a sample of each type.
	for _, ev := range evs[:40] {
		id := ev.GetEnvelope().GetEventId()
		at := ev.GetEnvelope().GetOccurredAt().AsTime()
		switch e := ev.(type) {
		case *bridgev1.ExecutionIntelligenceEvent:
			var svc, op, corr, inst string
			var ms int32
			var ok bool
			var created time.Time
			var seq int64
			if err := pool.QueryRow(ctx, `SELECT service_name, operation, correlation_id, execution_time_ms, success, created_at, source_instance, sequence
				FROM execution_intelligence WHERE execution_id = $1`, id).Scan(&svc, &op, &corr, &ms, &ok, &created, &inst, &seq); err != nil {
				t.Fatal(err)
			}
			if svc != e.GetPreContext().GetServiceName() || op != e.GetPreContext().GetOperation() || corr != e.GetCorrelationId() ||
				int64(ms) != e.GetResults().GetExecutionTime().AsDuration().Milliseconds() || ok != e.GetResults().GetSuccess() ||
				!created.Equal(at.Truncate(time.Microsecond)) || inst != e.GetEnvelope().GetSource().GetInstance() ||
				uint64(seq) != e.GetEnvelope().GetSequence() {
				t.Fatalf("execution %s stored as %s %s %s %d %v %s %s %d", id, svc, op, corr, ms, ok, created, inst, seq)
			}
		case *bridgev1.CommunicationIntelligenceEvent:
			var target, route, req string
			var status int32
			var rt float64
			if err := pool.QueryRow(ctx, `SELECT target_service, route, status_code, response_time_ms, request_data->>'method'
				FROM communication_intelligence WHERE communication_id = $1`, id).Scan(&target, &route, &status, &rt, &req); err != nil {
				t.Fatal(err)
			}
			pm := e.GetPerformanceMetrics()
			if target != pm.GetTargetService() || route != e.GetRequestContext().GetRoute() || status != pm.GetStatusCode() ||
				rt != float64(pm.GetResponseTime().AsDuration())/1e6 || req != e.GetRequestContext().GetMethod() {
				t.Fatalf("communication %s stored as %s %s %d %g %s", id, target, route, status, rt, req)
			}
		case *bridgev1.ToolRegistrationEvent:
			var name, src string
			if err := pool.QueryRow(ctx, `SELECT tool_name, service_source FROM tool_registration_events WHERE event_id = $1`, id).Scan(&name, &src); err != nil {
				t.Fatal(err)
			}
			if name != e.GetToolInfo().GetName() || src != e.GetToolInfo().GetServiceSource() {
				t.Fatalf("tool %s stored as %s %s", id, name, src)
			}
		}
	}

	// Cached views: Redis holds exactly what PostgreSQL says.
	rc := redis.NewClient(&redis.Options{Addr: rds.Addr()})
	defer rc.Close()
	checkViews := func(viaRedis bool) {
		t.Helper()
		for _, svc := range []string{"svc-0", "svc-1", "svc-2", "svc-3"} {
			for _, op := range []string{"op-0", "op-1", "op-2", "op-3", "op-4"} {
				got, err := cp.OperationStats(ctx, svc, op)
				if err != nil {
					t.Fatal(err)
				}
				want, err := cp.Store.OperationStats(ctx, svc, op)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("view %s/%s = %+v, PostgreSQL says %+v", svc, op, got, want)
				}
				if !viaRedis {
					continue
				}
				raw, err := rc.Get(ctx, cache.Perf.Key(svc, op)).Bytes()
				if err != nil {
					t.Fatalf("redis %s: %v", cache.Perf.Key(svc, op), err)
				}
				var cached store.OpStats
				if err := json.Unmarshal(raw, &cached); err != nil || cached != want {
					t.Fatalf("redis %s = %s, PostgreSQL says %+v", cache.Perf.Key(svc, op), raw, want)
				}
			}
		}
	}
	checkViews(true)
	// New executions invalidate the views they change.
	more := g.Batch(500)
	produce(t, kafka.Brokers(), more)
	waitFor(t, 30*time.Second, "more rows", func() bool { return rows() >= n+500 })
	checkViews(true)

	// Redis down: the views still answer from PostgreSQL, right.
	rds.Stop(t)
	produce(t, kafka.Brokers(), g.Batch(500))
	waitFor(t, 30*time.Second, "rows with Redis down", func() bool { return rows() >= n+1000 })
	checkViews(false)
	rds.Start(t)
	time.Sleep(1100 * time.Millisecond) // the cache's cooldown after failures
	hitsBefore := counter(t, cfg.Registry, "omnibridge_cache_hits_total", "perf")
	checkViews(false) // loads into Redis again
	checkViews(true)  // hits
	if h := counter(t, cfg.Registry, "omnibridge_cache_hits_total", "perf") - hitsBefore; h < 20 {
		t.Fatalf("perf hits after Redis came back = %v, want the hit ratio to recover", h)
	}

	// HTTP over h2c: metrics and readiness.
	h2 := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	for path, want := range map[string]string{"/readyz": "ok", "/metrics": "omnibridge_ingest_consumer_lag"} {
		resp, err := h2.Get("http://" + cp.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s over h2c: %s %s, body lacks %q", path, resp.Status, resp.Proto, want)
		}
	}

	// The Consul catalog becomes the service picture, kept while Consul is down.
	if err := kv.Register(ctx, cp.Consul, kv.ServiceRegistration{ID: "pay-1", Name: "pay", Version: "2.0.0",
		Address: "127.0.0.1", Port: 9999}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "pay in the picture", func() bool {
		s := cp.Services()
		return len(s) == 1 && s[0].Name == "pay" && s[0].Version == "2.0.0"
	})
	waitFor(t, 5*time.Second, "a consul lifecycle event", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, e := range rec.evs {
			if e.GetServiceInfo().GetName() == "pay" &&
				e.GetIntelligenceMetadata().GetDiscoveryMethod() == bridgev1.DiscoveryMethod_DISCOVERY_METHOD_CONSUL {
				return true
			}
		}
		return false
	})
	consul.Stop(t)
	time.Sleep(1500 * time.Millisecond)
	s := cp.Services()
	consul.Start(t)
	if len(s) != 1 || s[0].Name != "pay" {
		t.Fatalf("with Consul down the picture became %+v", s)
	}
	rec.mu.Lock()
	processed := rec.n
	rec.mu.Unlock()
	if processed == 0 {
		t.Fatal("the execution processor saw nothing")
	}
}

func counter(t testing.TB, reg *prometheus.Registry, name, family string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == family {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// The embedded defaults run the same pipeline without any server but the broker.
func TestEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	kafka := testenv.Kafka(t)
	cfg := controlplane.DefaultConfig()
	cfg.Bus = bus.Config{Brokers: kafka.Brokers()}
	cfg.Listen = "127.0.0.1:0"
	cfg.BatchSize, cfg.BatchWait = 200, 10*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(t.Context())
	cp, err := controlplane.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cp.PG != nil || cp.Consul != nil {
		t.Fatal("embedded control plane opened servers")
	}
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	g := storetest.NewGen(4)
	evs := g.Batch(1000)
	produce(t, kafka.Brokers(), evs)
	var want store.OpStats
	for _, ev := range evs {
		if e, ok := ev.(*bridgev1.ExecutionIntelligenceEvent); ok && e.GetPreContext().GetServiceName() == "svc-0" && e.GetPreContext().GetOperation() == "op-0" {
			want.Count++
		}
	}
	waitFor(t, 30*time.Second, "events in the embedded store", func() bool {
		n := 0
		_ = cp.Store.Replay(ctx, time.Time{}, func(bus.Event) error { n++; return nil })
		return n == 1000
	})
	got, err := cp.OperationStats(ctx, "svc-0", "op-0")
	if err != nil || got.Count != want.Count || want.Count == 0 {
		t.Fatalf("embedded view = %+v %v, want count %d", got, err, want.Count)
	}
	if err := cp.KV.Put(ctx, kv.DesiredKey("svc-0"), []byte("x")); err != nil {
		t.Fatal(err)
	}
}
