package mesh

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/cache"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func comm(service, method, route, endpoint string, status int, ms int, at time.Time) *bridgev1.CommunicationIntelligenceEvent {
	return &bridgev1.CommunicationIntelligenceEvent{
		Envelope:       &bridgev1.Envelope{EventId: "e", OccurredAt: timestamppb.New(at), Source: &bridgev1.Source{Service: service}},
		RequestContext: &bridgev1.RequestContext{Method: method, Route: route},
		PerformanceMetrics: &bridgev1.PerformanceMetrics{TargetService: service, StatusCode: int32(status), Success: status < 500,
			ResponseTime: durationpb.New(time.Duration(ms) * time.Millisecond), UpstreamEndpoint: endpoint},
		SampleWeight: 1,
	}
}

// TestRouteStats: counts, status codes, methods, percentiles and the
// per-endpoint breakdown over a window, with older buckets left out.
func TestRouteStats(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	rs := NewRouteStats(RouteStatsConfig{Now: clk.now, Versions: func(ep string) string {
		return map[string]string{"http://v1": "v1", "http://v2": "v2"}[ep]
	}})
	// Old traffic, outside the window asked for later.
	for range 50 {
		rs.Observe(comm("orders", "GET", "/orders/{id}", "http://v1", 500, 5, clk.now()), true)
	}
	clk.add(30 * time.Second)
	for i := range 100 {
		ep, status := "http://v1", 200
		if i%5 == 0 {
			ep = "http://v2"
			if i%10 == 0 {
				status = 503
			}
		}
		rs.Observe(comm("orders", "GET", "/orders/{id}", ep, status, 10+i, clk.now()), false)
	}
	rs.Observe(comm("payments", "POST", "/charge", "", 200, 3, clk.now()), false)
	got := rs.Routes("orders", 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("routes = %d, want 1", len(got))
	}
	r := got[0]
	if r.Requests != 100 || r.Errors != 10 || r.StatusCounts[503] != 10 || r.StatusCounts[200] != 90 {
		t.Errorf("counts: requests %d errors %d statuses %v", r.Requests, r.Errors, r.StatusCounts)
	}
	if len(r.Methods) != 1 || r.Methods[0] != "GET" {
		t.Errorf("methods %v", r.Methods)
	}
	// Latencies 10..109 ms: the median is about 60 ms (1% sketch accuracy).
	if r.P50 < 55*time.Millisecond || r.P50 > 65*time.Millisecond || r.P99 < 100*time.Millisecond {
		t.Errorf("percentiles p50 %v p99 %v", r.P50, r.P99)
	}
	if len(r.Endpoints) != 2 {
		t.Fatalf("endpoints %v", r.Endpoints)
	}
	v1, v2 := r.Endpoints[0], r.Endpoints[1]
	if v1.Version != "v1" || v1.Requests != 80 || v1.Errors != 0 || v2.Version != "v2" || v2.Requests != 20 || v2.Errors != 10 {
		t.Errorf("endpoints %+v", r.Endpoints)
	}
	if all := rs.Routes("", time.Minute); len(all) != 2 || all[0].Service != "orders" || all[0].Requests != 150 {
		t.Errorf("all routes over a minute: %+v", all)
	}
}

// TestAPICacheShortTTL: answers are cached for the family's short TTL only.
func TestAPICacheShortTTL(t *testing.T) {
	t.Parallel()
	c := newAPICache(cache.NewMem(), func(string) time.Duration { return 100 * time.Millisecond })
	var loads atomic.Int32
	load := func(context.Context) ([]byte, error) { loads.Add(1); return []byte("x"), nil }
	for range 3 {
		if b, err := c.GetOrLoad(t.Context(), "intel.routes", "k", load); err != nil || string(b) != "x" {
			t.Fatalf("get: %q %v", b, err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("loads within the TTL = %d, want 1", n)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := c.GetOrLoad(t.Context(), "intel.routes", "k", load); err != nil {
		t.Fatal(err)
	}
	if n := loads.Load(); n != 2 {
		t.Errorf("loads after the TTL = %d, want 2", n)
	}
	if APICacheTTL("intel.routes") > 5*time.Second || APICacheTTL("intel.graph") > 5*time.Second {
		t.Error("live views must not be cached for more than 5 s")
	}
}
