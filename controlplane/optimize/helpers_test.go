package optimize_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/proto"
)

const svc = "orders"

// fakeStats serves synthetic route snapshots (the analyzer's seam).
type fakeStats struct {
	mu     sync.Mutex
	routes []optimize.RouteSnapshot
}

func (f *fakeStats) set(rs ...optimize.RouteSnapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = rs
}

func (f *fakeStats) Routes(service string, window time.Duration) []optimize.RouteSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []optimize.RouteSnapshot
	for _, r := range f.routes {
		if service == "" || r.Service == service {
			out = append(out, r)
		}
	}
	return out
}

// publisher records what the engine publishes (the directive server's seam).
type publisher struct {
	mu       sync.Mutex
	version  uint64
	last     map[string][]*bridgev1.Directive
	canaries map[string]float64
	promoted int
}

func (p *publisher) Publish(_ context.Context, service string, ds []*bridgev1.Directive, canary float64) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last, p.canaries = map[string][]*bridgev1.Directive{}, map[string]float64{}
	}
	p.version++
	cp := make([]*bridgev1.Directive, len(ds))
	for i, d := range ds {
		cp[i] = proto.Clone(d).(*bridgev1.Directive)
	}
	p.last[service], p.canaries[service] = cp, canary
	return p.version, nil
}

func (p *publisher) Promote(context.Context, string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.promoted++
	return nil
}

func (p *publisher) directives(service string) []*bridgev1.Directive {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[service]
}

func newEngine(t *testing.T, stats optimize.StatsReader, pub optimize.Publisher, store optimize.Store, mut ...func(*optimize.Config)) *optimize.Engine {
	t.Helper()
	cfg := optimize.DefaultConfig()
	cfg.Stats, cfg.Publisher, cfg.Store = stats, pub, store
	cfg.MeasureAfter = time.Millisecond
	cfg.Window = time.Minute
	for _, m := range mut {
		m(&cfg)
	}
	e, err := optimize.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func route(requests uint64, errs uint64, p50, p99 time.Duration, methods ...string) optimize.RouteSnapshot {
	if len(methods) == 0 {
		methods = []string{"GET"}
	}
	return optimize.RouteSnapshot{
		Service: svc, Route: "/orders/{id}", Methods: methods, Window: time.Minute, Requests: requests, Errors: errs,
		StatusCounts: map[int]uint64{200: requests - errs, 503: errs}, P50: p50, P90: p50 * 2, P99: p99, P999: p99 * 3 / 2,
		SampleTraceIDs: []string{"4bf92f3577b34da6a3ce929d0e0e4736"},
	}
}

func byKind(t *testing.T, e *optimize.Engine, kind bridgev1.DirectiveKind, states ...bridgev1.RecommendationState) []*optimize.Record {
	t.Helper()
	recs, err := e.List(context.Background(), svc, states)
	if err != nil {
		t.Fatal(err)
	}
	var out []*optimize.Record
	for _, r := range recs {
		if r.Rec.GetKind() == kind {
			out = append(out, r)
		}
	}
	return out
}
