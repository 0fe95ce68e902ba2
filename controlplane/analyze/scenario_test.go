package analyze

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
)

// trafficMinute emits n requests to a route within minute m, latencies from lat.
func trafficMinute(s sources, target, route string, m, n int, lat func() float64) []bus.Event {
	var out []bus.Event
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(n))
		out = append(out, s.comm(comm{source: "web", target: target, route: route, at: at,
			took: time.Duration(lat() * float64(time.Millisecond))}))
	}
	return out
}

// A route whose latency climbs step by step is reported degrading within a
// bounded number of minutes; a route with the same mean and only noise
// stays stable at every minute, for every seed.
func TestTrendStepClimbDegradesNoiseStaysStable(t *testing.T) {
	t.Parallel()
	const (
		minutes  = 24
		perMin   = 30
		base     = 50.0 // ms
		step     = 4.0  // ms per minute
		noiseSD  = 8.0
		maxDelay = 8 // minutes of climbing before the verdict must be in
	)
	meanOfClimb := base + step*float64(minutes-1)/2
	for seed := uint64(1); seed <= 25; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		c := &clock{}
		a := newTestAnalyzer(t, c, nil)
		s := sources{}
		detectedAt := -1
		for m := 0; m < minutes; m++ {
			climb := base + step*float64(m)
			feed(t, a, trafficMinute(s, "api", "/climb", m, perMin, func() float64 { return math.Max(1, climb+rng.NormFloat64()*noiseSD) })...)
			feed(t, a, trafficMinute(s, "api", "/noise", m, perMin, func() float64 { return math.Max(1, meanOfClimb+rng.NormFloat64()*noiseSD) })...)
			// Query just after the minute closes.
			c.Set(t0.Add(time.Duration(m+1)*time.Minute + time.Second))
			climbSt, ok := a.Route("api", "/climb", bridgev1.Window_WINDOW_5M)
			if !ok {
				t.Fatal("no stats for /climb")
			}
			if climbSt.GetPerformanceTrend() == bridgev1.PerformanceTrend_PERFORMANCE_TREND_DEGRADING && detectedAt < 0 {
				detectedAt = m
			}
			noiseSt, _ := a.Route("api", "/noise", bridgev1.Window_WINDOW_5M)
			if tr := noiseSt.GetPerformanceTrend(); tr == bridgev1.PerformanceTrend_PERFORMANCE_TREND_DEGRADING || tr == bridgev1.PerformanceTrend_PERFORMANCE_TREND_IMPROVING {
				t.Fatalf("seed %d minute %d: noise-only route flagged %v", seed, m, tr)
			}
		}
		if detectedAt < 0 || detectedAt > maxDelay {
			t.Fatalf("seed %d: climbing route detected at minute %d, want within %d", seed, detectedAt, maxDelay)
		}
	}
}

func TestRouteStatsFields(t *testing.T) {
	t.Parallel()
	c := &clock{}
	a := newTestAnalyzer(t, c, nil)
	s := sources{}
	for m := 0; m < 10; m++ {
		for i := 0; i < 20; i++ {
			at := t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second)
			ev := s.comm(comm{source: "web", target: "api", route: "/x", at: at, took: 100 * time.Millisecond, ttfb: 80 * time.Millisecond, weight: 2})
			if i == 0 {
				ev = s.comm(comm{source: "web", target: "api", route: "/x", at: at, took: 100 * time.Millisecond, ttfb: 80 * time.Millisecond, weight: 2, status: 503, trace: tid(m), span: sid(m, 0)})
			}
			feed(t, a, ev)
		}
	}
	// A latency spike in the current minute.
	for i := 0; i < 20; i++ {
		feed(t, a, s.comm(comm{source: "web", target: "api", route: "/x", at: t0.Add(10*time.Minute + time.Duration(i)*time.Second), took: 900 * time.Millisecond, weight: 2}))
	}
	c.Set(t0.Add(10*time.Minute + 30*time.Second))
	st, ok := a.Route("api", "/x", bridgev1.Window_WINDOW_5M)
	if !ok {
		t.Fatal("no stats")
	}
	if st.Requests != 2*20*6 {
		t.Errorf("requests %d, want %d (weighted, 5 full minutes plus the current)", st.Requests, 2*20*6)
	}
	if math.Abs(st.ErrorRate-float64(2*5)/float64(2*20*6)) > 1e-9 || math.Abs(st.OperationSuccessRate+st.ErrorRate-1) > 1e-9 {
		t.Errorf("error rate %v success %v", st.ErrorRate, st.OperationSuccessRate)
	}
	if !st.Anomalous || st.AnomalyScore <= 3.5 {
		t.Errorf("spike not anomalous: score %v", st.AnomalyScore)
	}
	if st.VsHistoricalAvg <= 1 {
		t.Errorf("vs_historical_avg %v, want > 1 after the spike", st.VsHistoricalAvg)
	}
	if len(st.SampleTraceIds) == 0 || st.SampleTraceIds[0] != tid(9) {
		t.Errorf("sample traces %v, want newest failure %s first", st.SampleTraceIds, tid(9))
	}
	var up float64
	for _, b := range st.Bottlenecks {
		if b.Name == "upstream" {
			up = b.Share
		}
	}
	if up <= 0 || up >= 1 {
		t.Errorf("bottlenecks %v: want an upstream share in (0,1)", st.Bottlenecks)
	}
}

// abc builds trace i of edge→A→B→C; C fails when fail is true and B and A
// fail because of it. With parents false, parent span ids are left out so
// the tree must come from source→target edges and time containment.
func abc(s sources, i int, fail, parents bool) []bus.Event {
	at := t0.Add(time.Duration(i) * time.Second)
	p := func(x string) string {
		if parents {
			return x
		}
		return ""
	}
	var st, stB, stA int32 = 200, 200, 200
	var perr string
	if fail {
		st, stB, stA = 503, 502, 500
		perr = ""
	}
	c := s.comm(comm{source: "b", target: "c", route: "/charge", at: at.Add(20 * time.Millisecond), took: 50 * time.Millisecond, status: st, trace: tid(i), span: sid(i, 3), parent: p(sid(i, 2)), proxyErr: perr, corr: fmt.Sprintf("order-%d", i)})
	b := s.comm(comm{source: "a", target: "b", route: "/reserve", at: at.Add(10 * time.Millisecond), took: 80 * time.Millisecond, status: stB, trace: tid(i), span: sid(i, 2), parent: p(sid(i, 1))})
	a := s.comm(comm{source: "", target: "a", route: "/checkout", at: at, took: 100 * time.Millisecond, status: stA, trace: tid(i), span: sid(i, 1)})
	var out []bus.Event
	if fail {
		cexec := s.exec("c", "charge_card", at.Add(25*time.Millisecond), 30*time.Millisecond, "card processor 10.2.3.4:443 refused connection after 30 ms", "")
		cexec.Envelope.Trace = &bridgev1.TraceContext{TraceId: tid(i), SpanId: sid(i, 3), TraceFlags: 1}
		cexec.CorrelationId = tid(i)
		out = append(out, cexec)
	}
	// Children finish first, so their events arrive first.
	return append(out, c, b, a)
}

func TestRootCauseIsDeepestFailingHop(t *testing.T) {
	t.Parallel()
	for _, parents := range []bool{true, false} {
		name := "with parent span ids"
		if !parents {
			name = "by edges and time containment"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: t0.Add(time.Minute)}
			a := newTestAnalyzer(t, c, nil)
			s := sources{}
			for i := 0; i < 30; i++ {
				feed(t, a, abc(s, i, i%3 == 0, parents)...)
			}
			tr, err := a.Trace(tid(0))
			if err != nil {
				t.Fatal(err)
			}
			if tr.RootCauseService != "c" {
				t.Fatalf("root cause %q (%s), want c", tr.RootCauseService, tr.RootCauseReason)
			}
			if !strings.Contains(tr.RootCauseReason, "callers b, a failed") {
				t.Errorf("reason %q", tr.RootCauseReason)
			}
			root := tr.GetRoot()
			if root.Service != "a" || len(root.Children) != 1 || root.Children[0].Service != "b" || root.Children[0].Children[0].Service != "c" {
				t.Fatalf("tree shape wrong: %v", root)
			}
			if len(tr.CriticalPath) < 3 {
				t.Errorf("critical path %v", tr.CriticalPath)
			}
			if self := root.SelfTime.AsDuration(); self != 20*time.Millisecond {
				t.Errorf("a self time %v, want 20ms", self)
			}
			// The same tree is found by correlation id.
			byCorr, err := a.Trace("order-0")
			if err != nil || byCorr.RootCauseService != "c" {
				t.Fatalf("by correlation id: %v %v", byCorr.GetRootCauseService(), err)
			}
			// A successful trace has no root cause.
			ok, err := a.Trace(tid(1))
			if err != nil || ok.RootCauseService != "" {
				t.Fatalf("successful trace: %v %v", ok.GetRootCauseService(), err)
			}
			// Every failure pattern of the chain names c as root cause.
			pats := a.Patterns("", 0)
			if len(pats) < 3 {
				t.Fatalf("patterns %d, want at least 3 (a, b, c failures)", len(pats))
			}
			for _, p := range pats {
				if p.RootCauseService != "c" {
					t.Errorf("pattern %q root cause %q, want c", p.Template, p.RootCauseService)
				}
				if p.Frequency != 10 {
					t.Errorf("pattern %q frequency %d, want 10", p.Template, p.Frequency)
				}
			}
			// Downstream call shares reach the caller's bottlenecks.
			st, _ := a.Route("a", "/checkout", bridgev1.Window_WINDOW_5M)
			found := false
			for _, bn := range st.Bottlenecks {
				if bn.Name == "call:b" && math.Abs(bn.Share-0.8) < 0.01 {
					found = true
				}
			}
			if !found {
				t.Errorf("bottlenecks of a %v, want call:b ≈ 0.8", st.Bottlenecks)
			}
			// Causal hint: b's failures come from c, with evidence.
			g := a.Graph(bridgev1.Window_WINDOW_5M)
			var hint *bridgev1.CausalHint
			for _, h := range g.CausalHints {
				if h.EffectService == "b" && h.CauseService == "c" {
					hint = h
				}
			}
			if hint == nil || hint.Confidence < 0.99 || !strings.Contains(hint.Evidence, "root cause c") {
				t.Fatalf("causal hints %v", g.CausalHints)
			}
			if len(g.Edges) != 3 {
				t.Errorf("edges %v, want edge→a, a→b, b→c", g.Edges)
			}
		})
	}
}

func TestPatternsMergeAndSplit(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	a := newTestAnalyzer(t, c, nil)
	s := sources{}
	msgs := []string{
		"timeout calling inventory-7.prod.svc:8080 after 3000 ms for order 81723",
		"timeout calling inventory-2.prod.svc:8080 after 2500 ms for order 99",
		"timeout calling 10.0.4.2:8080 after 3100 ms for order 5",
	}
	for i, m := range msgs {
		feed(t, a, s.exec("orders", "reserve", t0.Add(time.Duration(i)*time.Second), time.Second, m, ""))
	}
	feed(t, a, s.exec("orders", "reserve", t0, time.Second, `sku "A-19" out of stock`, ""))
	feed(t, a, s.exec("payments", "charge", t0, time.Second, "card 4111 declined by issuer", ""))
	pats := a.Patterns("", 0)
	if len(pats) != 3 {
		for _, p := range pats {
			t.Log(p.Template, p.Frequency)
		}
		t.Fatalf("%d patterns, want 3", len(pats))
	}
	if pats[0].Frequency != 3 || pats[0].Template != "timeout calling <*> after <NUM> ms for order <NUM>" {
		t.Fatalf("top pattern %q ×%d", pats[0].Template, pats[0].Frequency)
	}
	if got := a.Patterns("payments", 0); len(got) != 1 || got[0].Services[0] != "payments" {
		t.Fatalf("service filter: %v", got)
	}
}

func TestToolDriftAndDegradation(t *testing.T) {
	t.Parallel()
	c := &clock{}
	a := newTestAnalyzer(t, c, nil)
	s := sources{}
	feed(t, a, s.tool("docs", "search_docs", "search the docs", t0, "query"))
	feed(t, a, s.tool("docs", "search_docs", "search the docs", t0.Add(time.Minute), "query")) // same schema again
	feed(t, a, s.tool("docs", "search_docs", "search the docs", t0.Add(2*time.Minute), "query", "limit"))
	feed(t, a, s.tool("wiki", "searchDocs", "find pages", t0, "q"))
	feed(t, a, s.tool("wiki", "get_page", "get a page", t0, "id"))
	for m := 0; m < 40; m++ {
		for i := 0; i < 10; i++ {
			at := t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second)
			ok := m < 35 || i%2 == 0 // the last 5 minutes fail half the time
			feed(t, a, s.toolCall("docs", "search_docs", at, 20*time.Millisecond, ok))
			feed(t, a, s.toolCall("wiki", "get_page", at, 20*time.Millisecond, true))
		}
	}
	c.Set(t0.Add(40 * time.Minute))
	tools := a.Tools("")
	if len(tools) != 3 {
		t.Fatalf("%d tools", len(tools))
	}
	docs := tools[0]
	if docs.Service != "docs" || len(docs.History) != 2 {
		t.Fatalf("docs tool %s/%s history %d, want 2 (one drift)", docs.Service, docs.Name, len(docs.History))
	}
	if !docs.Degraded || !strings.Contains(docs.DegradedReason, "success rate fell") {
		t.Fatalf("degraded %v %q", docs.Degraded, docs.DegradedReason)
	}
	if docs.Calls != 400 || math.Abs(docs.SuccessRate-375.0/400) > 1e-9 {
		t.Fatalf("calls %d success %v", docs.Calls, docs.SuccessRate)
	}
	if len(docs.IntegrationOpportunities) != 1 || docs.IntegrationOpportunities[0] != "wiki/searchDocs" {
		t.Fatalf("integration opportunities %v", docs.IntegrationOpportunities)
	}
	for _, tl := range tools[1:] {
		if tl.Degraded {
			t.Errorf("%s flagged: %s", tl.Name, tl.DegradedReason)
		}
	}
}

func TestEcosystemImpactAndCatalog(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	a := newTestAnalyzer(t, c, nil)
	s := sources{}
	feed(t, a, s.lifecycle("orders", bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, t0, []string{"orders.create", "orders.list"}, []string{"stock"}))
	feed(t, a, s.lifecycle("stock", bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, t0, []string{"orders.list", "stock.reserve"}, nil))
	g := a.Graph(bridgev1.Window_WINDOW_5M)
	imp := g.GetImpact()
	if imp.GetService() != "stock" || imp.GetCapabilityExpansion() != 0.5 || len(imp.RedundantCapabilities) != 1 || imp.RedundantCapabilities[0] != "orders.list" {
		t.Fatalf("arrival impact %v", imp)
	}
	if imp.DependencyComplexity != 0.5 {
		t.Errorf("dependency complexity %v, want 1 edge / 2 services", imp.DependencyComplexity)
	}
	a.OnCatalog([]CatalogService{{Name: "ledger", Version: "2.1", Address: "10.0.0.9:80", Healthy: true}})
	svcs := a.Services()
	if len(svcs) != 3 || svcs[0].Name != "ledger" || svcs[0].Health != bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY ||
		svcs[0].DiscoveryMethods[0] != bridgev1.DiscoveryMethod_DISCOVERY_METHOD_CONSUL {
		t.Fatalf("catalog %v", svcs)
	}
	feed(t, a, s.lifecycle("stock", bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED, t0.Add(time.Second), nil, nil))
	g = a.Graph(bridgev1.Window_WINDOW_5M)
	if g.GetImpact().GetService() != "stock" || g.GetImpact().GetDependencyComplexity() != 0 || len(g.Services) != 2 {
		t.Fatalf("departure: impact %v services %d", g.GetImpact(), len(g.Services))
	}
	a.OnCatalog(nil)
	if n := len(a.Services()); n != 1 {
		t.Fatalf("after ledger left consul: %d services", n)
	}
}

func TestJourneysAndDropOffs(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	a := newTestAnalyzer(t, c, nil)
	s := sources{}
	for i, sess := range []string{"s1", "s2", "s3"} {
		at := t0.Add(time.Duration(i) * time.Minute)
		feed(t, a, s.exec("shop", "browse", at, time.Millisecond, "", sess))
		feed(t, a, s.exec("shop", "add_to_cart", at.Add(time.Second), time.Millisecond, "", sess))
		errMsg := ""
		if sess != "s2" {
			errMsg = "payment failed"
		}
		feed(t, a, s.exec("pay", "checkout", at.Add(2*time.Second), time.Millisecond, errMsg, sess))
	}
	j := a.Journeys(0)
	if len(j.Journeys) != 3 || j.Journeys[0].SessionId != "s3" || strings.Join(j.Journeys[0].Steps, ",") != "shop browse,shop add_to_cart,pay checkout" {
		t.Fatalf("journeys %v", j.Journeys)
	}
	if j.DropOffs["pay checkout"] != 2 || j.Journeys[1].Dropped {
		t.Fatalf("drop-offs %v", j.DropOffs)
	}
}

func TestReplicasMergeToSameAnswer(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0.Add(10 * time.Minute)}
	all, r1, r2 := newTestAnalyzer(t, c, nil), newTestAnalyzer(t, c, nil), newTestAnalyzer(t, c, nil)
	s := sources{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		ev := s.comm(comm{source: "web", target: "api", route: []string{"/a", "/b"}[i%2], at: t0.Add(time.Duration(i) * 200 * time.Millisecond),
			took: time.Duration(rng.ExpFloat64() * 30 * float64(time.Millisecond)), status: []int32{200, 200, 200, 500}[i%4]})
		feed(t, all, ev)
		if i%3 == 0 {
			feed(t, r1, ev)
		} else {
			feed(t, r2, ev)
		}
	}
	if err := r1.MergeRoutes(r2.ExportRoutes()); err != nil {
		t.Fatal(err)
	}
	for _, w := range []bridgev1.Window{bridgev1.Window_WINDOW_1M, bridgev1.Window_WINDOW_5M, bridgev1.Window_WINDOW_1H, bridgev1.Window_WINDOW_BASELINE} {
		x, y := all.RouteStats("", w, 0), r1.RouteStats("", w, 0)
		if len(x) != len(y) {
			t.Fatalf("window %v: %d vs %d routes", w, len(x), len(y))
		}
		for i := range x {
			if x[i].Requests != y[i].Requests || x[i].ErrorRate != y[i].ErrorRate || x[i].P50.AsDuration() != y[i].P50.AsDuration() || x[i].P99.AsDuration() != y[i].P99.AsDuration() {
				t.Fatalf("window %v route %s: single %v merged %v", w, x[i].Route, x[i], y[i])
			}
		}
	}
}

func TestTraceBoundsAndTTL(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	a := newTestAnalyzer(t, c, func(cfg *Config) { cfg.MaxTraces = 5; cfg.MaxSpansPerTrace = 3; cfg.TraceTTL = time.Minute })
	s := sources{}
	for i := 0; i < 10; i++ {
		for j := 0; j < 5; j++ {
			feed(t, a, s.comm(comm{target: "a", route: "/x", at: t0, took: time.Millisecond, trace: tid(i), span: sid(i, j)}))
		}
	}
	if _, err := a.Trace(tid(0)); err == nil {
		t.Fatal("oldest trace kept beyond MaxTraces")
	}
	tr, err := a.Trace(tid(9))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var count func(*bridgev1.TraceSpan)
	count = func(s *bridgev1.TraceSpan) {
		n++
		for _, ch := range s.Children {
			count(ch)
		}
	}
	count(tr.Root)
	if n != 4 { // synthetic root over 3 kept spans
		t.Fatalf("%d spans, want 3 kept under a synthetic root", n)
	}
	c.Set(t0.Add(2 * time.Minute))
	a.sweep()
	if _, err := a.Trace(tid(9)); err == nil {
		t.Fatal("trace kept beyond TTL")
	}
}

// Without traces, a hint still comes from timing: c's latency rises a
// minute before b's errors do, on the b → c edge.
func TestCausalHintFromOnsetTiming(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0.Add(12*time.Minute + 30*time.Second)}
	a := newTestAnalyzer(t, c, nil)
	s := sources{}
	for m := 0; m < 12; m++ {
		for i := 0; i < 20; i++ {
			at := t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second)
			lat := 20 * time.Millisecond
			if m >= 8 {
				lat = 200 * time.Millisecond
			}
			status := int32(200)
			if m >= 9 && i%2 == 0 {
				status = 504
			}
			feed(t, a, s.comm(comm{source: "b", target: "c", route: "/q", at: at, took: lat}),
				s.comm(comm{source: "web", target: "b", route: "/p", at: at, took: lat + 5*time.Millisecond, status: status}))
		}
	}
	g := a.Graph(bridgev1.Window_WINDOW_5M)
	if len(g.CausalHints) != 1 {
		t.Fatalf("hints %v, want exactly b <- c", g.CausalHints)
	}
	h := g.CausalHints[0]
	if h.EffectService != "b" || h.CauseService != "c" || !strings.Contains(h.Evidence, "c median latency rose") || !strings.Contains(h.Evidence, "at 10:08") {
		t.Fatalf("hint %v", h)
	}
}

func TestInvalidEventsAreCountedAndIgnored(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	a := newTestAnalyzer(t, c, nil)
	bad := &bridgev1.CommunicationIntelligenceEvent{Envelope: &bridgev1.Envelope{}, RequestContext: &bridgev1.RequestContext{Route: "/x"}}
	feed(t, a, bad, &bridgev1.ExecutionIntelligenceEvent{})
	if n := len(a.RouteStats("", bridgev1.Window_WINDOW_1H, 0)); n != 0 {
		t.Fatalf("%d routes from invalid events", n)
	}
	mfs, err := a.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var dropped float64
	for _, mf := range mfs {
		if mf.GetName() == "omnibridge_analyze_dropped_total" {
			for _, m := range mf.GetMetric() {
				dropped += m.GetCounter().GetValue()
			}
		}
	}
	if dropped != 2 {
		t.Fatalf("dropped counter %v, want 2", dropped)
	}
}

// Catalog lifecycle events share one source; instances are told apart by
// endpoint, so one instance leaving does not remove the service.
func TestConsulInstancesByEndpoint(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	a := newTestAnalyzer(t, c, nil)
	s := sources{}
	ev := func(typ bridgev1.LifecycleEventType, url string) *bridgev1.ServiceLifecycleEvent {
		e := s.lifecycle("ledger", typ, t0, nil, nil)
		e.Envelope.Source = &bridgev1.Source{Service: "consul-catalog", Instance: "catalog"}
		e.IntelligenceMetadata.DiscoveryMethod = bridgev1.DiscoveryMethod_DISCOVERY_METHOD_CONSUL
		e.ServiceInfo.Endpoints = []*bridgev1.Endpoint{{Url: url, Protocol: "http"}}
		return e
	}
	feed(t, a, ev(bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, "http://10.0.0.1:80"),
		ev(bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, "http://10.0.0.2:80"),
		ev(bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED, "http://10.0.0.1:80"))
	svcs := a.Services()
	if len(svcs) != 1 || svcs[0].Instances != 1 {
		t.Fatalf("services %v, want ledger with 1 instance", svcs)
	}
}
