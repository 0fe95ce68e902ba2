package closedloop_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/omninode/bridge/controlplane/adminapi"
	"github.com/omninode/bridge/controlplane/directives"
	"github.com/omninode/bridge/controlplane/optimize"
	"github.com/omninode/bridge/controlplane/store"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/omninode/bridge/sidecar"
	sidecardirectives "github.com/omninode/bridge/sidecar/directives"
	"github.com/omninode/bridge/sidecar/policy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const service = "orders"

// controlPlane is the loop's control side, all real: directive server on
// h2c, engine over PostgreSQL, admin API over Connect and gRPC.
type controlPlane struct {
	url     string
	dsrv    *directives.Server
	eng     *optimize.Engine
	stats   *busStats
	brokers []string
	admin   bridgev1connect.AdminServiceClient
	grpc    bridgev1connect.AdminServiceClient
	loop    *adminapi.Handler
	// signals counts the critical signals that reached the control plane
	// on the directive streams, by kind.
	signals sync.Map // bridgev1.SignalKind -> *atomic.Int64
}

// signalsOf returns how many signals of kind reached the control plane.
func (cp *controlPlane) signalsOf(kind bridgev1.SignalKind) int64 {
	if v, ok := cp.signals.Load(kind); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func startControlPlane(t *testing.T, mut func(*optimize.Config)) *controlPlane {
	t.Helper()
	kafka := testenv.Kafka(t)
	pg := testenv.PostgreSQL(t)
	pool, err := pgxpool.New(t.Context(), pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	cp := &controlPlane{brokers: kafka.Brokers()}
	cp.stats = consumeStats(t, cp.brokers)

	var eng atomic.Pointer[optimize.Engine]
	dcfg := directives.DefaultConfig()
	dcfg.KV = directives.NewMemoryKV()
	dcfg.Poll, dcfg.StatusFlush, dcfg.Heartbeat = 100*time.Millisecond, 100*time.Millisecond, time.Second
	dcfg.OnSignal = func(ctx context.Context, svc string, sig *bridgev1.CriticalSignal) {
		v, _ := cp.signals.LoadOrStore(sig.GetKind(), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		if e := eng.Load(); e != nil {
			e.OnSignal(ctx, svc, sig)
		}
	}
	if cp.dsrv, err = directives.New(dcfg); err != nil {
		t.Fatal(err)
	}
	ocfg := optimize.DefaultConfig()
	ocfg.Stats, ocfg.Publisher, ocfg.Store = cp.stats, cp.dsrv, optimize.NewPGStore(pool)
	ocfg.Interval, ocfg.Window, ocfg.MeasureAfter, ocfg.MinRequests = 250*time.Millisecond, 3*time.Second, time.Minute, 30 // small: this shared machine may push only tens of requests per second under -race
	ocfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if mut != nil {
		mut(&ocfg)
	}
	if cp.eng, err = optimize.New(ocfg); err != nil {
		t.Fatal(err)
	}
	eng.Store(cp.eng)
	if cp.loop, err = adminapi.New(adminapi.Config{Engine: cp.eng, Status: cp.dsrv}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(cp.dsrv.Handler())
	path, h := cp.loop.Mount()
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(adminapi.WithActor(r.Context(), "e2e-operator")))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := directives.NewH2CServer(mux)
	go hs.Serve(ln)
	cp.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cp.dsrv.Run(ctx) })
	wg.Go(func() { cp.eng.Run(ctx) })
	t.Cleanup(func() { cancel(); hs.Close(); wg.Wait() })
	cp.admin = bridgev1connect.NewAdminServiceClient(http.DefaultClient, cp.url)
	cp.grpc = bridgev1connect.NewAdminServiceClient(sidecardirectives.H2CClient(), cp.url, connect.WithGRPC())
	return cp
}

func (cp *controlPlane) setMode(t *testing.T, kind bridgev1.DirectiveKind, mode bridgev1.DirectiveMode) {
	t.Helper()
	if _, err := cp.admin.SetMode(t.Context(), connect.NewRequest(&bridgev1.SetModeRequest{Service: service, Kind: kind, Mode: mode, Reason: "e2e"})); err != nil {
		t.Fatal(err)
	}
}

// upstream is a service whose failure share and latency the test sets.
type upstream struct {
	url   string
	fail  atomic.Uint64 // share × 1e6
	delay atomic.Int64
	hits  atomic.Int64
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		if d := time.Duration(u.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if rand.Float64()*1e6 < float64(u.fail.Load()) {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

func (u *upstream) setFail(share float64) { u.fail.Store(uint64(share * 1e6)) }

// startSidecar runs a real sidecar with its policy engine and directive
// client in front of up.
func startSidecar(t *testing.T, cp *controlPlane, up string) (string, *policy.Engine) {
	t.Helper()
	var client atomic.Pointer[sidecardirectives.Client]
	pcfg := policy.DefaultConfig()
	pcfg.Service, pcfg.Endpoints = service, []string{up}
	pcfg.OnSignal = func(s *bridgev1.CriticalSignal) {
		if c := client.Load(); c != nil {
			c.SendSignal(s)
		}
	}
	// A short error-burst window, so that a burst shows within a second at
	// the few tens of requests a second this machine pushes under -race.
	pcfg.ErrorBurst.Window, pcfg.ErrorBurst.MinRequests = time.Second, 10
	pe, err := policy.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	ccfg := sidecardirectives.DefaultConfig()
	ccfg.ControlPlane, ccfg.Service, ccfg.Instance, ccfg.StateDir = cp.url, service, bus.NewEventID(), t.TempDir()
	ccfg.BackoffMin, ccfg.BackoffMax = 50*time.Millisecond, time.Second
	c, err := sidecardirectives.New(ccfg, pe)
	if err != nil {
		t.Fatal(err)
	}
	client.Store(c)
	cfg := sidecar.DefaultConfig()
	cfg.Service, cfg.Upstream, cfg.ControlPlane = service, up, cp.url
	cfg.Listen, cfg.Admin, cfg.Hooks = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SpoolDir = t.TempDir()
	cfg.HealthInterval = 200 * time.Millisecond
	cfg.DrainTimeout = time.Second
	cfg.Bus = &bus.Config{Brokers: cp.brokers, Linger: time.Millisecond}
	cfg.Emitter.DeliveryTimeout = time.Second
	cfg.Emitter.RetryInterval = 100 * time.Millisecond
	cfg.Emitter.FlushTimeout = 2 * time.Second
	cfg.Policy = pe
	cfg.Components = []sidecar.Component{c}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	s, err := sidecar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + s.ProxyAddr(), pe
}

// load sends GET requests at about rps until stopped, counting statuses.
type load struct {
	mu     sync.Mutex
	codes  map[int]int
	cancel context.CancelFunc
	done   chan struct{}
}

func startLoad(t *testing.T, url string, workers int, pause time.Duration) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{codes: map[int]int{}, cancel: cancel, done: make(chan struct{})}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/items", nil)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				l.mu.Lock()
				l.codes[resp.StatusCode]++
				l.mu.Unlock()
				time.Sleep(pause)
			}
		})
	}
	go func() { wg.Wait(); close(l.done) }()
	t.Cleanup(l.stop)
	return l
}

func (l *load) stop() {
	l.cancel()
	<-l.done
}

// take returns the counts since the last take and resets them.
func (l *load) take() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.codes
	l.codes = map[int]int{}
	return c
}

func total(c map[int]int) (n int) {
	for _, v := range c {
		n += v
	}
	return n
}

func eventually(t *testing.T, what string, within time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// enforced returns the recommendations of kind in state, over the API.
func (cp *controlPlane) recs(t *testing.T, kind bridgev1.DirectiveKind, state bridgev1.RecommendationState) []*bridgev1.Recommendation {
	t.Helper()
	res, err := cp.loop.ListRecommendations(t.Context(), &bridgev1.ListRecommendationsRequest{Service: service, States: []bridgev1.RecommendationState{state}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*bridgev1.Recommendation
	for _, r := range res.GetRecommendations() {
		if r.GetKind() == kind {
			out = append(out, r)
		}
	}
	return out
}

func active(pe *policy.Engine, id string) bool {
	for _, a := range pe.Active() {
		if a == id {
			return true
		}
	}
	return false
}
