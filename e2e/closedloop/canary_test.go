package closedloop_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	sidecardirectives "github.com/omninode/bridge/sidecar/directives"
	"github.com/omninode/bridge/sidecar/policy"
)

// startPolicyProxy is a policy-level sidecar: the policy engine around an
// httputil.ReverseProxy, with the real directive client, recording each
// request's outcome and the endpoint the weights chose into stats (the
// sidecar package does not yet report the chosen endpoint in its events).
func startPolicyProxy(t *testing.T, cp *controlPlane, endpoints []string, stats *busStats) (string, *policy.Engine) {
	t.Helper()
	pe, err := policy.New(policy.Config{Service: service, Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	ccfg := sidecardirectives.DefaultConfig()
	ccfg.ControlPlane, ccfg.Service, ccfg.Instance = cp.url, service, bus.NewEventID()
	ccfg.GRPC = true
	c, err := sidecardirectives.New(ccfg, pe)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	u, _ := url.Parse(endpoints[0])
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = pe.Transport(http.DefaultTransport)
	inner := pe.Wrap(rp)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := policy.WithRecorder(r.Context())
		sw := &statusWriter{ResponseWriter: w, status: 200}
		inner.ServeHTTP(sw, r.WithContext(ctx))
		ep := policy.Endpoint(ctx)
		if ep == "" {
			ep = endpoints[0]
		}
		stats.add(sample{at: time.Now(), service: service, route: "/items", method: r.Method, status: sw.status, success: sw.status < 500,
			latency: time.Since(start), endpoint: ep, weight: 1, events: &bridgev1.CommunicationIntelligenceEvent{PolicyDecisions: policy.Decisions(ctx)}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, pe
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(c int) { s.status = c; s.ResponseWriter.WriteHeader(c) }

// TestCanaryLosesShare: a canary version with a higher error rate than the
// stable one loses its traffic share step by step until it is drained; the
// stable one does not lose any.
func TestCanaryLosesShare(t *testing.T) {
	stats := &busStats{}
	cp := startControlPlane(t, func(c *optimize.Config) {
		c.Stats = stats
		c.Window, c.MinRequests = 2*time.Second, 30 // this machine may be slow; 30 requests still show 30% vs 0%
		g := c.Guardrails[bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS]
		g.DefaultMode, g.Cooldown = bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE, time.Second
		c.Guardrails[bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS] = g
	})
	var stableHits, canaryHits atomic.Int64
	stable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stableHits.Add(1)
		io.WriteString(w, "v1")
	}))
	t.Cleanup(stable.Close)
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		canaryHits.Add(1)
		if rand.Float64() < 0.3 {
			http.Error(w, "v2 bug", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "v2")
	}))
	t.Cleanup(canary.Close)
	proxy, pe := startPolicyProxy(t, cp, []string{stable.URL, canary.URL}, stats)

	rollout := &bridgev1.Directive{Scope: &bridgev1.Scope{Service: service}, Spec: &bridgev1.Directive_TrafficWeights{TrafficWeights: &bridgev1.TrafficWeightsPolicy{
		Endpoints: []*bridgev1.WeightedEndpoint{{Endpoint: stable.URL, Version: "v1", Weight: 5000}, {Endpoint: canary.URL, Version: "v2", Weight: 5000}}}}}
	rec, _, err := cp.eng.Force(t.Context(), rollout, optimize.RouteSnapshot{}, "release-bot", "canary v2 at 50%")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rollout at the sidecar", 5*time.Second, func() bool { return active(pe, rec.Rec.GetId()) })
	startLoad(t, proxy, 4, 2*time.Millisecond)

	// weights in force: a route-scoped directive wins over the service-wide rollout.
	weights := func() map[string]uint32 {
		out := map[string]uint32{}
		var best *bridgev1.Directive
		for _, d := range pe.Snapshot().GetDirectives() {
			if d.GetTrafficWeights() != nil && (best == nil || d.GetScope().GetRoute() != "") {
				best = d
			}
		}
		for _, w := range best.GetTrafficWeights().GetEndpoints() {
			v := "v1"
			if w.GetEndpoint() == canary.URL {
				v = "v2"
			}
			out[v] = w.GetWeight()
		}
		return out
	}
	var seen []uint32
	eventually(t, "the canary drained", 30*time.Second, func() bool {
		w := weights()
		if len(seen) == 0 || seen[len(seen)-1] != w["v2"] {
			seen = append(seen, w["v2"])
		}
		if w["v1"] < 5000 {
			t.Fatalf("the stable version lost share: %v", w)
		}
		return w["v2"] == 0
	})
	t.Logf("canary weight over time: %v", seen)
	for i := 1; i < len(seen); i++ {
		if seen[i] > seen[i-1] {
			t.Errorf("canary weight rose: %v", seen)
		}
	}
	if len(seen) < 3 {
		t.Errorf("canary drained in %d steps %v, want gradual steps within the guardrail", len(seen), seen)
	}
	time.Sleep(300 * time.Millisecond)
	before := canaryHits.Load()
	time.Sleep(500 * time.Millisecond)
	if got := canaryHits.Load() - before; got != 0 {
		t.Errorf("drained canary still got %d requests", got)
	}
	if stableHits.Load() == 0 {
		t.Error("stable got no traffic")
	}
}
