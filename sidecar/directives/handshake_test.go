package directives_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/sidecar/directives"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeCP is a DirectiveService that takes hellos and answers them only
// when told to: the control plane as a sidecar sees it through a path that
// stalls after the connection was accepted.
type fakeCP struct {
	bridgev1connect.UnimplementedDirectiveServiceHandler
	answer  atomic.Bool                 // answer hellos with a heartbeat
	release chan struct{}               // closed: answer the hellos waiting
	hellos  chan *bridgev1.SidecarHello // every hello, as it arrives
	ended   chan struct{}               // one per stream that ended
	after   chan *bridgev1.SyncRequest  // what sidecars send after hello
}

func newFakeCP() *fakeCP {
	return &fakeCP{release: make(chan struct{}), hellos: make(chan *bridgev1.SidecarHello, 64),
		ended: make(chan struct{}, 64), after: make(chan *bridgev1.SyncRequest, 64)}
}

func (f *fakeCP) Sync(ctx context.Context, st *connect.BidiStream[bridgev1.SyncRequest, bridgev1.SyncResponse]) error {
	defer func() { f.ended <- struct{}{} }()
	first, err := st.Receive()
	if err != nil {
		return err
	}
	f.hellos <- first.GetHello()
	if !f.answer.Load() {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil
		}
	}
	if err := st.Send(&bridgev1.SyncResponse{Message: &bridgev1.SyncResponse_Heartbeat{Heartbeat: timestamppb.Now()}}); err != nil {
		return err
	}
	for {
		msg, err := st.Receive()
		if err != nil {
			return nil
		}
		f.after <- msg
	}
}

// serve serves f over cleartext HTTP/2 on a loopback port.
func (f *fakeCP) serve(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(bridgev1connect.NewDirectiveServiceHandler(f))
	srv := httptest.NewUnstartedServer(mux)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// runClient runs a directive client for the "orders" service until the test ends.
func runClient(t *testing.T, cfg directives.Config, eng directives.Applier) *directives.Client {
	t.Helper()
	cfg.Service, cfg.Instance = "orders", "a"
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	c, err := directives.New(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// gauge returns the value of the named metric in reg (0 if absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func waitFor(t *testing.T, what string, within time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var protocols = []struct {
	name string
	grpc bool
}{{"connect", false}, {"grpc", true}}

// TestConnectedOnlyOnceAnswered: after its hello reached the control plane
// the stream is connecting, not connected (the gauge and Connected agree);
// it is connected once the control plane's first message, a heartbeat,
// arrives. That heartbeat changes nothing: the persisted directives stay in
// force and no ack is sent.
func TestConnectedOnlyOnceAnswered(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			live := &bridgev1.Directive{Id: "live", Scope: &bridgev1.Scope{Service: "orders"}, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE,
				ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
				Spec:      &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(time.Second)}}}
			if err := policy.SaveState(dir, &bridgev1.DirectiveSnapshot{Service: "orders", Version: 9, Directives: []*bridgev1.Directive{live}}); err != nil {
				t.Fatal(err)
			}
			eng, err := policy.New(policy.Config{Service: "orders"})
			if err != nil {
				t.Fatal(err)
			}
			cp := newFakeCP()
			reg := prometheus.NewRegistry()
			cfg := directives.DefaultConfig()
			cfg.ControlPlane, cfg.GRPC, cfg.StateDir, cfg.Registry = cp.serve(t), p.grpc, dir, reg
			cfg.HandshakeTimeout = time.Minute // this test answers late, not never
			c := runClient(t, cfg, eng)

			var hello *bridgev1.SidecarHello
			select {
			case hello = <-cp.hellos:
			case <-time.After(10 * time.Second):
				t.Fatal("no hello")
			}
			if hello.GetAppliedVersion() != 9 {
				t.Errorf("hello applied_version %d, want the persisted 9", hello.GetAppliedVersion())
			}
			// The old client claimed connected before the hello was even
			// sent; give a wrong claim time to show.
			time.Sleep(100 * time.Millisecond)
			if c.Connected() || gauge(t, reg, "omnibridge_sidecar_directive_stream_connected") != 0 {
				t.Fatal("connected before the control plane answered the hello")
			}
			if g := gauge(t, reg, "omnibridge_sidecar_directive_stream_connecting"); g != 1 {
				t.Errorf("connecting gauge %v while the hello waits for an answer, want 1", g)
			}

			close(cp.release)
			waitFor(t, "connected after the answer", 5*time.Second, c.Connected)
			if g := gauge(t, reg, "omnibridge_sidecar_directive_stream_connected"); g != 1 {
				t.Errorf("connected gauge %v, want 1", g)
			}
			if g := gauge(t, reg, "omnibridge_sidecar_directive_stream_connecting"); g != 0 {
				t.Errorf("connecting gauge %v once connected, want 0", g)
			}
			select {
			case msg := <-cp.after:
				t.Errorf("the sidecar answered a heartbeat with %v", msg)
			case <-time.After(200 * time.Millisecond):
			}
			if eng.Version() != 9 || len(eng.Active()) != 1 || eng.Active()[0] != "live" {
				t.Errorf("version %d active %v after the heartbeat, want 9 [live] kept", eng.Version(), eng.Active())
			}
			if n := gauge(t, reg, "omnibridge_sidecar_directive_snapshots_applied_total") + gauge(t, reg, "omnibridge_sidecar_directive_snapshots_rejected_total"); n != 0 {
				t.Errorf("%v snapshots applied or rejected, want none", n)
			}
			// Signals flow once connected.
			c.SendSignal(&bridgev1.CriticalSignal{EventId: "sig-1"})
			select {
			case msg := <-cp.after:
				if msg.GetSignal().GetEventId() != "sig-1" {
					t.Errorf("got %v, want the signal", msg)
				}
			case <-time.After(5 * time.Second):
				t.Error("signal not sent on the connected stream")
			}
		})
	}
}

// TestUnansweredHelloReconnects: a control plane that accepts the stream
// and the hello but never answers (a path stalled after the connection
// was made) never counts as connected; the client closes the attempt after
// HandshakeTimeout and tries again with backoff, and connects once the
// control plane answers.
func TestUnansweredHelloReconnects(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			eng, err := policy.New(policy.Config{Service: "orders"})
			if err != nil {
				t.Fatal(err)
			}
			cp := newFakeCP()
			reg := prometheus.NewRegistry()
			const handshake, backoffMax = 300 * time.Millisecond, 100 * time.Millisecond
			cfg := directives.DefaultConfig()
			cfg.ControlPlane, cfg.GRPC, cfg.Registry = cp.serve(t), p.grpc, reg
			cfg.HandshakeTimeout, cfg.BackoffMin, cfg.BackoffMax = handshake, 20*time.Millisecond, backoffMax
			c := runClient(t, cfg, eng)

			var connectedSeen atomic.Bool
			stopWatch := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					if c.Connected() {
						connectedSeen.Store(true)
					}
					select {
					case <-stopWatch:
						return
					case <-time.After(2 * time.Millisecond):
					}
				}
			}()

			// The bound: the handshake timeout, the longest backoff, and
			// slack for a loaded machine (-race, 2 cores).
			const slack = 3 * time.Second
			var at []time.Time
			for i := range 3 {
				select {
				case <-cp.hellos:
					at = append(at, time.Now())
				case <-time.After(handshake + backoffMax + slack):
					t.Fatalf("hello %d did not come within %v of the previous one", i+1, handshake+backoffMax+slack)
				}
				if i > 0 {
					// The attempt was closed, not left open beside the new one.
					select {
					case <-cp.ended:
					case <-time.After(slack):
						t.Fatalf("attempt %d still open on the control plane after the client gave up on it", i)
					}
				}
			}
			for i := 1; i < len(at); i++ {
				if gap := at[i].Sub(at[i-1]); gap < handshake-50*time.Millisecond {
					t.Errorf("attempt %d retried after %v, before the %v handshake timeout", i, gap, handshake)
				}
			}
			close(stopWatch)
			<-watched
			if connectedSeen.Load() {
				t.Error("reported connected although the control plane never answered")
			}
			if n := gauge(t, reg, "omnibridge_sidecar_directive_stream_handshake_timeouts_total"); n < 2 {
				t.Errorf("handshake timeouts %v, want at least 2", n)
			}
			if n := gauge(t, reg, "omnibridge_sidecar_directive_stream_reconnects_total"); n < 2 {
				t.Errorf("reconnects %v, want at least 2", n)
			}

			// The path heals: the next attempt is answered and stays up.
			cp.answer.Store(true)
			close(cp.release)
			waitFor(t, "connected once the control plane answers", handshake+backoffMax+slack, c.Connected)
			time.Sleep(2 * handshake)
			if !c.Connected() {
				t.Error("an answered stream was dropped")
			}
		})
	}
}

func TestHandshakeTimeoutValidated(t *testing.T) {
	t.Parallel()
	cfg := directives.DefaultConfig()
	cfg.ControlPlane, cfg.Service, cfg.Instance = "http://127.0.0.1:1", "orders", "a"
	if cfg.HandshakeTimeout != 10*time.Second {
		t.Errorf("default handshake timeout %v, want 10s", cfg.HandshakeTimeout)
	}
	cfg.HandshakeTimeout = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "handshake_timeout") {
		t.Errorf("Validate() = %v, want it to name handshake_timeout", err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
