package policy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// rtFunc is an upstream round tripper under the test's control (no sockets,
// so that it runs inside a synctest bubble).
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func respond(status int, hdr ...string) rtFunc {
	return func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		for i := 0; i+1 < len(hdr); i += 2 {
			h.Set(hdr[i], hdr[i+1])
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("x")), Request: r}, nil
	}
}

// signals collects the critical signals an engine emits.
type signals struct {
	mu  sync.Mutex
	got []*bridgev1.CriticalSignal
}

func (s *signals) on(sig *bridgev1.CriticalSignal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, sig)
}

func (s *signals) bursts() []*bridgev1.CriticalSignal {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*bridgev1.CriticalSignal
	for _, g := range s.got {
		if g.GetKind() == bridgev1.SignalKind_SIGNAL_KIND_ERROR_BURST {
			out = append(out, g)
		}
	}
	return out
}

// burstEngine is an engine with no directives in force, as policy.New
// leaves it, with its signals and metrics collected.
func burstEngine(t *testing.T, b policy.ErrorBurstConfig) (*policy.Engine, *signals, *prometheus.Registry) {
	t.Helper()
	s := &signals{}
	reg := prometheus.NewRegistry()
	cfg := policy.DefaultConfig()
	cfg.Service, cfg.OnSignal, cfg.Registry, cfg.ErrorBurst = svc, s.on, reg, b
	e, err := policy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, s, reg
}

// send makes n requests on path through Transport around rt.
func send(t *testing.T, e *policy.Engine, ctx context.Context, path string, n int, rt http.RoundTripper) {
	t.Helper()
	tr := e.Transport(rt)
	for range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://upstream"+path, nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
	}
}

func signalCount(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "omnibridge_policy_signals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestErrorBurstWithoutDirectives: with no directive in force, failures
// reaching half of at least 20 requests in the window raise one signal per
// route per second, counted in the metrics.
func TestErrorBurstWithoutDirectives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, sigs, reg := burstEngine(t, policy.ErrorBurstConfig{})
		ctx := context.Background()
		send(t, e, ctx, "/orders", 10, respond(200))
		send(t, e, ctx, "/orders", 9, respond(503))
		if n := len(sigs.bursts()); n != 0 {
			t.Fatalf("%d signals below min requests (19 in the window)", n)
		}
		send(t, e, ctx, "/orders", 1, respond(503)) // 10 of 20: the threshold
		got := sigs.bursts()
		if len(got) != 1 {
			t.Fatalf("%d signals at 10 failures of 20, want 1", len(got))
		}
		if s := got[0]; s.GetRoute() != "/orders" || s.GetValue() != 0.5 || s.GetWindowRequests() != 20 || s.GetEventId() == "" || !s.GetObservedAt().AsTime().Equal(time.Now()) {
			t.Errorf("signal %v, want route /orders, value 0.5 over 20 requests, now", s)
		}
		send(t, e, ctx, "/orders", 50, respond(502))
		if n := len(sigs.bursts()); n != 1 {
			t.Errorf("%d signals within the same second, want 1 (throttled)", n)
		}
		time.Sleep(time.Second)
		send(t, e, ctx, "/orders", 1, respond(500))
		got = sigs.bursts()
		if len(got) != 2 || got[1].GetWindowRequests() != 71 {
			t.Fatalf("after a second: %d signals (%v), want a second one over 71 requests", len(got), got)
		}
		if n := signalCount(t, reg, "error_burst"); n != 2 {
			t.Errorf("omnibridge_policy_signals_total{kind=error_burst} = %v, want 2", n)
		}
	})
}

// TestErrorBurstWindowRolls: failures older than the window no longer
// count, and successes dilute the share below the threshold.
func TestErrorBurstWindowRolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, sigs, _ := burstEngine(t, policy.ErrorBurstConfig{Window: 2 * time.Second, Threshold: 0.5, MinRequests: 20})
		ctx := context.Background()
		send(t, e, ctx, "/a", 19, respond(503))
		time.Sleep(2 * time.Second) // the 19 failures leave the window
		send(t, e, ctx, "/a", 19, respond(503))
		if n := len(sigs.bursts()); n != 0 {
			t.Fatalf("%d signals: failures from an old window still counted", n)
		}
		time.Sleep(1200 * time.Millisecond) // about half of the window ago
		send(t, e, ctx, "/a", 30, respond(200))
		send(t, e, ctx, "/a", 10, respond(503)) // 29 failures of 59
		if n := len(sigs.bursts()); n != 0 {
			t.Fatalf("%d signals at a share below the threshold", n)
		}
		send(t, e, ctx, "/a", 1, respond(503)) // 30 of 60
		if n := len(sigs.bursts()); n != 1 {
			t.Fatalf("%d signals at 30 failures of 60, want 1", n)
		}
	})
}

// TestErrorBurstClassifies: transport errors, 5xx and gRPC/Connect server
// errors count as failures; 4xx and a client that went away do not; routes
// are apart, keyed by the template the proxy set or else the path.
func TestErrorBurstClassifies(t *testing.T) {
	down := rtFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("connection refused") })
	tests := []struct {
		name  string
		rt    http.RoundTripper
		burst bool
	}{
		{"transport error", down, true},
		{"503", respond(503), true},
		{"500", respond(500), true},
		{"grpc unavailable in headers", respond(200, "Grpc-Status", "14", "Content-Type", "application/grpc"), true},
		{"grpc internal in headers", respond(200, "Grpc-Status", "13", "Content-Type", "application/grpc"), true},
		{"connect unavailable", respond(503, "Content-Type", "application/json", "Connect-Protocol-Version", "1"), true},
		{"404", respond(404), false},
		{"429", respond(429), false},
		{"200", respond(200), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, sigs, _ := burstEngine(t, policy.ErrorBurstConfig{})
				send(t, e, policy.WithRoute(context.Background(), "/orders/{id}"), "/orders/7", 20, tc.rt)
				got := sigs.bursts()
				if (len(got) == 1) != tc.burst || len(got) > 1 {
					t.Fatalf("%d signals, want burst=%v", len(got), tc.burst)
				}
				if tc.burst && got[0].GetRoute() != "/orders/{id}" {
					t.Errorf("route %q, want the template", got[0].GetRoute())
				}
			})
		})
	}

	t.Run("client gone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e, sigs, _ := burstEngine(t, policy.ErrorBurstConfig{})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			gone := rtFunc(func(r *http.Request) (*http.Response, error) { return nil, r.Context().Err() })
			send(t, e, ctx, "/x", 40, gone)
			if n := len(sigs.bursts()); n != 0 {
				t.Errorf("%d signals for requests the client cancelled", n)
			}
		})
	})

	t.Run("routes apart", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e, sigs, _ := burstEngine(t, policy.ErrorBurstConfig{})
			ctx := context.Background()
			send(t, e, ctx, "/a", 15, respond(503))
			send(t, e, ctx, "/b", 15, respond(503))
			if n := len(sigs.bursts()); n != 0 {
				t.Fatalf("%d signals: two routes' failures added up", n)
			}
			send(t, e, ctx, "/b", 5, respond(503))
			if got := sigs.bursts(); len(got) != 1 || got[0].GetRoute() != "/b" {
				t.Fatalf("signals %v, want one for /b", got)
			}
		})
	})
}

// TestErrorBurstThroughWrapWithDirective: with directives in force the
// outcome seen through Wrap and Transport still counts, including the 504 of
// an enforced timeout.
func TestErrorBurstThroughWrapWithDirective(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, sigs, reg := burstEngine(t, policy.ErrorBurstConfig{})
		mustApply(t, e, snapshot(1, dir(enforce, "", timeoutDir(100*time.Millisecond))))
		slow := &fakeRT{delay: time.Second}
		slow.status.Store(200)
		for range 20 {
			if code, _ := through(e, slow); code != http.StatusGatewayTimeout {
				t.Fatalf("status %d, want 504 from the timeout", code)
			}
		}
		got := sigs.bursts()
		if len(got) != 1 || got[0].GetRoute() != "/orders/1" || got[0].GetValue() != 1 {
			t.Fatalf("signals %v, want one burst on /orders/1 at share 1", got)
		}
		// 20 timeouts of 100 ms span 2 s: one breach signal per second.
		if n := signalCount(t, reg, "latency_breach"); n != 2 {
			t.Errorf("latency_breach signals %v, want 2 (throttled to one a second)", n)
		}
	})
}

// TestErrorBurstDisabledAndZeroEngine: detection off, or the zero Engine,
// observes nothing and passes requests through.
func TestErrorBurstDisabledAndZeroEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, sigs, _ := burstEngine(t, policy.ErrorBurstConfig{Disabled: true})
		send(t, e, context.Background(), "/a", 40, respond(503))
		if n := len(sigs.bursts()); n != 0 {
			t.Errorf("%d signals with detection disabled", n)
		}
		var zero policy.Engine
		calls := 0
		send(t, &zero, context.Background(), "/a", 40, rtFunc(func(r *http.Request) (*http.Response, error) {
			calls++
			return respond(503)(r)
		}))
		if calls != 40 {
			t.Errorf("zero engine passed %d of 40 requests", calls)
		}
	})
}

func TestErrorBurstConfigValidate(t *testing.T) {
	t.Parallel()
	for _, b := range []policy.ErrorBurstConfig{
		{Window: time.Millisecond}, {Threshold: 1.5}, {Threshold: -1}, {MinRequests: -3},
	} {
		cfg := policy.DefaultConfig()
		cfg.ErrorBurst = b
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "error_burst.") {
			t.Errorf("Validate(%+v) = %v, want an error_burst error", b, err)
		}
	}
	if err := policy.DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// BenchmarkTransportErrorBurst measures the request path's cost of
// counting outcomes with no directive in force, from parallel requests on
// one route (the contended case).
func BenchmarkTransportErrorBurst(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			cfg := policy.DefaultConfig()
			cfg.ErrorBurst.Disabled = !on
			cfg.OnSignal = func(*bridgev1.CriticalSignal) {}
			e, err := policy.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			tr := e.Transport(respond(200))
			req, _ := http.NewRequestWithContext(policy.WithRoute(context.Background(), "/orders/{id}"), http.MethodGet, "http://upstream/orders/1", nil)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, _ := tr.RoundTrip(req)
					resp.Body.Close()
				}
			})
		})
	}
}
