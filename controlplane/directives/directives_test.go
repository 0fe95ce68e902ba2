package directives_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/directives"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	sidecardirectives "github.com/omninode/bridge/sidecar/directives"
	"github.com/omninode/bridge/sidecar/policy"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const svc = "orders"

type controlPlane struct {
	srv  *directives.Server
	url  string
	addr string
	hs   *http.Server
	stop context.CancelFunc
	done chan struct{}
}

func startCP(t *testing.T, kv directives.KV, addr string, onSignal func(context.Context, string, *bridgev1.CriticalSignal), opts ...func(*directives.Config)) *controlPlane {
	t.Helper()
	cfg := directives.DefaultConfig()
	cfg.KV = kv
	cfg.Poll = 50 * time.Millisecond
	cfg.StatusFlush = 50 * time.Millisecond
	cfg.Heartbeat = 200 * time.Millisecond
	cfg.OnSignal = onSignal
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := directives.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(srv.Handler())
	hs := directives.NewH2CServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	cp := &controlPlane{srv: srv, url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), hs: hs, stop: cancel, done: make(chan struct{})}
	go hs.Serve(ln)
	go func() { srv.Run(ctx); close(cp.done) }()
	t.Cleanup(cp.close)
	return cp
}

func (cp *controlPlane) close() {
	cp.stop()
	cp.hs.Close()
	<-cp.done
}

type sidecar struct {
	eng    *policy.Engine
	client *sidecardirectives.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startSidecar(t *testing.T, cpURL, instance, stateDir string, grpc bool) *sidecar {
	t.Helper()
	eng, err := policy.New(policy.Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sidecardirectives.DefaultConfig()
	cfg.ControlPlane, cfg.Service, cfg.Instance, cfg.StateDir, cfg.GRPC = cpURL, svc, instance, stateDir, grpc
	cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	c, err := sidecardirectives.New(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc := &sidecar{eng: eng, client: c, cancel: cancel, done: make(chan struct{})}
	go func() { c.Run(ctx); close(sc.done) }()
	t.Cleanup(func() { cancel(); <-sc.done })
	return sc
}

func timeoutDirective(d time.Duration, expires time.Duration) *bridgev1.Directive {
	return &bridgev1.Directive{
		Id: bus.NewEventID(), Scope: &bridgev1.Scope{Service: svc}, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE,
		ExpiresAt: timestamppb.New(time.Now().Add(expires)),
		Spec:      &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(d)}},
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(t *testing.T, srv *directives.Server) map[string]*bridgev1.SidecarStatus {
	t.Helper()
	st, _, err := srv.Status(context.Background(), svc)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*bridgev1.SidecarStatus{}
	for _, s := range st {
		out[s.GetInstance()] = s
	}
	return out
}

var protocols = []struct {
	name string
	grpc bool
}{{"connect", false}, {"grpc", true}}

// TestSyncApplyAckAndReject: snapshots reach every sidecar and are
// acknowledged; an out-of-bounds one is rejected with the reason, the
// previous version stays in force, and GetStatus shows the rejection.
func TestSyncApplyAckAndReject(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cp := startCP(t, directives.NewMemoryKV(), "", nil)
			a := startSidecar(t, cp.url, "a", "", p.grpc)
			b := startSidecar(t, cp.url, "b", "", p.grpc)
			v1, err := cp.srv.Publish(t.Context(), svc, []*bridgev1.Directive{timeoutDirective(time.Second, time.Hour)}, 0)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := cp.srv.WaitAcked(ctx, svc, v1, 2); err != nil {
				t.Fatal(err)
			}
			if a.eng.Version() != v1 || b.eng.Version() != v1 {
				t.Fatalf("engines at %d/%d, want %d", a.eng.Version(), b.eng.Version(), v1)
			}
			for _, s := range status(t, cp.srv) {
				if s.GetSyncState() != "SYNCED" || s.GetAckedVersion() != v1 || !s.GetConnected() {
					t.Errorf("status %v", s)
				}
			}

			bad := timeoutDirective(time.Second, time.Hour)
			bad.Spec = &bridgev1.Directive_Retry{Retry: &bridgev1.RetryPolicy{MaxAttempts: 3, BackoffBase: durationpb.New(time.Millisecond), RetryOnStatus: []int32{503}, BudgetRatio: 0.9}}
			v2, err := cp.srv.Publish(t.Context(), svc, []*bridgev1.Directive{bad}, 0)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "rejections", func() bool {
				st := status(t, cp.srv)
				return st["a"].GetSyncState() == "REJECTED" && st["b"].GetSyncState() == "REJECTED"
			})
			st := status(t, cp.srv)["a"]
			if st.GetRejectedVersion() != v2 || !strings.Contains(st.GetRejectReason(), "retry.budget_ratio") || !strings.Contains(st.GetRejectReason(), bad.GetId()) {
				t.Errorf("status %v: want the reason naming the directive and field", st)
			}
			if a.eng.Version() != v1 {
				t.Errorf("engine at %d after a rejected snapshot, want %d kept", a.eng.Version(), v1)
			}
		})
	}
}

// TestCanaryThenPromote: a canary rollout reaches only its share of
// instances; promotion reaches all.
func TestCanaryThenPromote(t *testing.T) {
	t.Parallel()
	cp := startCP(t, directives.NewMemoryKV(), "", nil)
	var scs []*sidecar
	for i := range 10 {
		scs = append(scs, startSidecar(t, cp.url, "i-"+string(rune('a'+i)), "", false))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	v1, _ := cp.srv.Publish(ctx, svc, []*bridgev1.Directive{timeoutDirective(time.Second, time.Hour)}, 0)
	if err := cp.srv.WaitAcked(ctx, svc, v1, 10); err != nil {
		t.Fatal(err)
	}
	v2, _ := cp.srv.Publish(ctx, svc, []*bridgev1.Directive{timeoutDirective(2*time.Second, time.Hour)}, 0.5)
	eventually(t, "canary acks", func() bool {
		n := 0
		for _, s := range scs {
			if s.eng.Version() == v2 {
				n++
			}
		}
		return n > 0
	})
	time.Sleep(100 * time.Millisecond)
	canaries := 0
	for _, s := range scs {
		if s.eng.Version() == v2 {
			canaries++
		} else if s.eng.Version() != v1 {
			t.Errorf("instance at %d", s.eng.Version())
		}
	}
	if canaries == 0 || canaries == 10 {
		t.Fatalf("%d of 10 instances got the canary at 50%%", canaries)
	}
	if err := cp.srv.Promote(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := cp.srv.WaitAcked(ctx, svc, v2, 10); err != nil {
		t.Fatal(err)
	}
}

// TestControlPlaneDownThenBack: with the control plane gone, sidecars keep
// the last acknowledged directives until they expire on schedule; when it
// comes back they resynchronize without a restart of their own.
func TestControlPlaneDownThenBack(t *testing.T) {
	t.Parallel()
	kv := directives.NewMemoryKV()
	cp := startCP(t, kv, "", nil)
	state := t.TempDir()
	sc := startSidecar(t, cp.url, "a", state, false)
	ctx := t.Context()
	short := timeoutDirective(time.Second, 1500*time.Millisecond)
	long := timeoutDirective(time.Second, time.Hour)
	long.Scope.Route = "/long"
	v1, _ := cp.srv.Publish(ctx, svc, []*bridgev1.Directive{short, long}, 0)
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	if err := cp.srv.WaitAcked(actx, svc, v1, 1); err != nil { // acked after it was persisted
		t.Fatal(err)
	}
	addr := cp.addr
	cp.close()

	if len(sc.eng.Active()) != 2 {
		t.Fatalf("active %v with the control plane down, want both kept", sc.eng.Active())
	}
	// A sidecar restarted now starts from the persisted snapshot.
	restarted := startSidecar(t, "http://"+addr, "b", state, false)
	eventually(t, "persisted snapshot applied", func() bool { return restarted.eng.Version() == v1 })
	eventually(t, "expiry", func() bool { return len(sc.eng.Active()) == 1 })
	if got := sc.eng.Active()[0]; got != long.GetId() {
		t.Errorf("active %s after expiry, want %s", got, long.GetId())
	}

	cp2 := startCP(t, kv, addr, nil)
	v2, _ := cp2.srv.Publish(ctx, svc, []*bridgev1.Directive{long}, 0)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := cp2.srv.WaitAcked(wctx, svc, v2, 2); err != nil {
		t.Fatal(err)
	}
}

// TestSignalsFastPathDeduplicated: a signal on the stream reaches the
// engine once; its bus copy is recognized as a duplicate.
func TestSignalsFastPathDeduplicated(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	cp := startCP(t, directives.NewMemoryKV(), "", func(_ context.Context, service string, s *bridgev1.CriticalSignal) {
		mu.Lock()
		got = append(got, service+" "+s.GetEventId())
		mu.Unlock()
	})
	sc := startSidecar(t, cp.url, "a", "", true)
	v, _ := cp.srv.Publish(t.Context(), svc, []*bridgev1.Directive{timeoutDirective(time.Second, time.Hour)}, 0)
	eventually(t, "ack", func() bool { return sc.eng.Version() == v })
	id := bus.NewEventID()
	sig := &bridgev1.CriticalSignal{EventId: id, Kind: bridgev1.SignalKind_SIGNAL_KIND_ERROR_BURST, Value: 0.4, ObservedAt: timestamppb.Now()}
	sc.client.SendSignal(sig)
	sc.client.SendSignal(sig) // a repeat on the stream is a duplicate too
	eventually(t, "signal", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != svc+" "+id {
		t.Errorf("engine got %v, want the signal once", got)
	}
	if !cp.srv.SeenEvent(id) {
		t.Error("the bus copy was not recognized as a duplicate")
	}
	if cp.srv.SeenEvent(bus.NewEventID()) {
		t.Error("a new id was taken for a duplicate")
	}
}

// TestOperatorOverrideTakesPrecedence: an override written to the KV store
// replaces the engine's directive of its kind and bumps the version.
func TestOperatorOverrideTakesPrecedence(t *testing.T) {
	t.Parallel()
	kv := directives.NewMemoryKV()
	cp := startCP(t, kv, "", nil)
	sc := startSidecar(t, cp.url, "a", "", false)
	v1, _ := cp.srv.Publish(t.Context(), svc, []*bridgev1.Directive{timeoutDirective(time.Second, time.Hour)}, 0)
	eventually(t, "ack", func() bool { return sc.eng.Version() == v1 })
	ov := &bridgev1.Directive{Spec: &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(3 * time.Second)}}}
	b, _ := protojson.Marshal(ov)
	if err := kv.Put(t.Context(), directives.PrefixOverrides+svc+"/timeout", b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "override applied", func() bool { return sc.eng.Version() > v1 })
	ds := sc.eng.Snapshot().GetDirectives()
	if len(ds) != 1 || ds[0].GetTimeout().GetRequestTimeout().AsDuration() != 3*time.Second || ds[0].GetId() != "override-orders-timeout" {
		t.Errorf("directives %v, want only the override", ds)
	}
}

// TestFanOutSmall runs the fan-out benchmark body with 100 sidecars.
func TestFanOutSmall(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			res, err := directives.FanOutBench(t.Context(), 100, 3, p.grpc)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res)
			if len(res.FanOut) != 3 || len(res.Critical) != 3 {
				t.Errorf("result %v", res)
			}
		})
	}
}

// BenchmarkFanOut1000 measures the fan-out of a directive change to 1,000
// connected sidecars and the critical path from a signal to a directive at
// the sidecar (`make bench`).
func BenchmarkFanOut1000(b *testing.B) {
	var all directives.FanOutResult
	for b.Loop() {
		res, err := directives.FanOutBench(context.Background(), 1000, 20, false)
		if err != nil {
			b.Fatal(err)
		}
		all.Sidecars, all.Connect = res.Sidecars, res.Connect
		all.FanOut = append(all.FanOut, res.FanOut...)
		all.Critical = append(all.Critical, res.Critical...)
	}
	b.ReportMetric(float64(directives.Pct(all.FanOut, 50).Microseconds())/1000, "fanout-p50-ms")
	b.ReportMetric(float64(directives.Pct(all.FanOut, 99).Microseconds())/1000, "fanout-p99-ms")
	b.ReportMetric(float64(directives.Pct(all.Critical, 50).Microseconds())/1000, "critical-p50-ms")
	b.ReportMetric(float64(directives.Pct(all.Critical, 99).Microseconds())/1000, "critical-p99-ms")
	b.Log(all)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
