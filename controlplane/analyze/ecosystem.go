package analyze

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/omninode/bridge/controlplane/analyze/stats"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// EdgeSource names callers from outside the mesh.
const EdgeSource = "edge"

type instance struct {
	health  bridgev1.HealthStatus
	last    time.Time
	stopped bool
	lifeAt  time.Time // time of the latest lifecycle event applied (older ones arriving late are ignored)
}

type service struct {
	name          string
	versions      map[string]struct{}
	caps          map[string]struct{}
	deps          map[string]struct{}
	methods       map[bridgev1.DiscoveryMethod]struct{}
	instances     map[string]*instance
	last          time.Time
	consul        bool
	consulHealthy bool
	announced     bool          // a lifecycle start or the catalog announced it (arrival is analyzed once)
	observed      bool          // its sidecar sent events (discovery by the proxy)
	inbound       *stats.Series // traffic it received, for causal timing and load share
}

type edgeKey struct{ source, target string }

// ecosystem is the live catalog, the dependency graph and the analyses on
// them. One mutex: every operation is O(1) or proportional to the catalog.
type ecosystem struct {
	cfg      Config
	mu       sync.Mutex
	services map[string]*service
	edges    map[edgeKey]*stats.Series
	impact   *bridgev1.EcosystemImpact
	causes   map[string]map[string]uint64 // effect -> cause -> failed hops of effect whose trace's root cause was cause
	fails    map[string]uint64            // effect -> failed hops voted
}

func newEcosystem(cfg Config) *ecosystem {
	return &ecosystem{cfg: cfg, services: map[string]*service{}, edges: map[edgeKey]*stats.Series{},
		causes: map[string]map[string]uint64{}, fails: map[string]uint64{}}
}

func (e *ecosystem) svc(name string) (*service, bool) {
	s := e.services[name]
	if s != nil {
		return s, false
	}
	s = &service{name: name, versions: map[string]struct{}{}, caps: map[string]struct{}{}, deps: map[string]struct{}{},
		methods: map[bridgev1.DiscoveryMethod]struct{}{}, instances: map[string]*instance{}, inbound: stats.NewSeries(e.cfg.Layout)}
	e.services[name] = s
	return s, true
}

func (e *ecosystem) liveInstances(s *service, now time.Time) int {
	n := 0
	for _, in := range s.instances {
		if !in.stopped && now.Sub(in.last) <= e.cfg.InstanceTTL {
			n++
		}
	}
	return n
}

// seen notes an event from an instance of a service.
func (e *ecosystem) seen(name string, src *bridgev1.Source, at time.Time) {
	if name == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, _ := e.svc(name)
	if v := src.GetVersion(); v != "" {
		s.versions[v] = struct{}{}
	}
	if at.After(s.last) {
		s.last = at
	}
	if id := src.GetInstance(); id != "" && src.GetService() == name {
		in := s.instances[id]
		if in == nil {
			in = &instance{health: bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY}
			s.instances[id] = in
		}
		s.observed = true
		if at.After(in.last) {
			in.last = at
			in.stopped = false
		}
	}
}

// edge records one request from source to target.
func (e *ecosystem) edge(source, target string, x stats.Sample) {
	if source == "" {
		source = EdgeSource
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k := edgeKey{source, target}
	ser := e.edges[k]
	if ser == nil {
		if len(e.edges) >= e.cfg.MaxRoutes {
			return
		}
		ser = stats.NewSeries(e.cfg.Layout)
		e.edges[k] = ser
	}
	ser.Add(x)
	t, _ := e.svc(target)
	t.inbound.Add(x)
	if source != EdgeSource {
		e.svc(source)
	}
}

func (e *ecosystem) lifecycle(ev *bridgev1.ServiceLifecycleEvent, routes *routeTable, now time.Time) {
	info := ev.GetServiceInfo()
	name := info.GetName()
	if name == "" {
		return
	}
	at := ev.GetEnvelope().GetOccurredAt().AsTime()
	id := ev.GetEnvelope().GetSource().GetInstance()
	if ev.GetIntelligenceMetadata().GetDiscoveryMethod() == bridgev1.DiscoveryMethod_DISCOVERY_METHOD_CONSUL && len(info.GetEndpoints()) > 0 {
		// Catalog events come from one watcher source: the endpoint names
		// the instance.
		id = "consul:" + info.GetEndpoints()[0].GetUrl()
	}
	if id == "" {
		id = name
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, _ := e.svc(name)
	if at.After(s.last) {
		s.last = at
	}
	if v := info.GetVersion(); v != "" {
		s.versions[v] = struct{}{}
	}
	for _, c := range info.GetCapabilities() {
		s.caps[c] = struct{}{}
	}
	for _, d := range info.GetDependencies() {
		s.deps[d] = struct{}{}
	}
	if m := ev.GetIntelligenceMetadata().GetDiscoveryMethod(); m != bridgev1.DiscoveryMethod_DISCOVERY_METHOD_UNSPECIFIED {
		s.methods[m] = struct{}{}
	}
	in := s.instances[id]
	if in == nil {
		in = &instance{}
		s.instances[id] = in
	}
	if at.After(in.last) {
		in.last = at
	}
	if at.Before(in.lifeAt) {
		return // a late, older lifecycle event (replay racing live delivery)
	}
	in.lifeAt = at
	switch ev.GetEventType() {
	case bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED:
		in.stopped = false
		in.health = ev.GetHealth()
		if in.health == bridgev1.HealthStatus_HEALTH_STATUS_UNSPECIFIED {
			in.health = bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY
		}
		if !s.announced {
			s.announced = true
			e.impact = e.analyzeImpact(name, false, now)
		}
	case bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED:
		in.stopped = true
		if e.liveInstances(s, now) == 0 && !s.consul {
			e.impact = e.analyzeImpact(name, true, now)
			delete(e.services, name)
		}
	case bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE:
		in.health = ev.GetHealth()
	}
}

func (e *ecosystem) onCatalog(list []CatalogService, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := map[string]bool{}
	for _, c := range list {
		if c.Name == "" {
			continue
		}
		in[c.Name] = true
		s, _ := e.svc(c.Name)
		arriving := !s.announced
		s.announced = true
		s.consul, s.consulHealthy, s.last = true, c.Healthy, now
		s.methods[bridgev1.DiscoveryMethod_DISCOVERY_METHOD_CONSUL] = struct{}{}
		if c.Version != "" {
			s.versions[c.Version] = struct{}{}
		}
		if arriving {
			e.impact = e.analyzeImpact(c.Name, false, now)
		}
	}
	for name, s := range e.services {
		if s.consul && !in[name] {
			s.consul = false
			if e.liveInstances(s, now) == 0 {
				e.impact = e.analyzeImpact(name, true, now)
				delete(e.services, name)
			}
		}
	}
}

// analyzeImpact is the original design's impact analysis of a service
// arriving or leaving. Called with e.mu held, before a departing service is
// removed.
func (e *ecosystem) analyzeImpact(name string, leaving bool, now time.Time) *bridgev1.EcosystemImpact {
	s := e.services[name]
	others := map[string]struct{}{}
	for n, o := range e.services {
		if n == name {
			continue
		}
		for c := range o.caps {
			others[c] = struct{}{}
		}
	}
	imp := &bridgev1.EcosystemImpact{Service: name, AnalyzedAt: timestamppb.New(now)}
	unique := 0
	for c := range s.caps {
		if _, ok := others[c]; ok {
			imp.RedundantCapabilities = append(imp.RedundantCapabilities, c)
		} else {
			unique++
		}
	}
	sort.Strings(imp.RedundantCapabilities)
	if len(s.caps) > 0 {
		imp.CapabilityExpansion = float64(unique) / float64(len(s.caps))
	}
	edges := e.edgeSet()
	nsvc := len(e.services)
	if leaving {
		nsvc--
		for k := range edges {
			if k.source == name || k.target == name {
				delete(edges, k)
			}
		}
	}
	if nsvc > 0 {
		imp.DependencyComplexity = float64(len(edges)) / float64(nsvc)
	}
	var total, mine float64
	for n, o := range e.services {
		r := o.inbound.Window(now, time.Hour).Requests
		total += r
		if n == name {
			mine = r
		}
	}
	if total > 0 {
		imp.LoadDistributionImpact = mine / total
	}
	return imp
}

// edgeSet is the observed edges plus the declared dependencies.
func (e *ecosystem) edgeSet() map[edgeKey]struct{} {
	out := map[edgeKey]struct{}{}
	for k := range e.edges {
		if k.source != EdgeSource {
			out[k] = struct{}{}
		}
	}
	for n, s := range e.services {
		for d := range s.deps {
			out[edgeKey{n, d}] = struct{}{}
		}
	}
	return out
}

func (e *ecosystem) causeVote(effect, from, to string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if from == "" && to != "" {
		e.fails[effect]++
	}
	if from != "" {
		if m := e.causes[effect]; m != nil && m[from] > 0 {
			m[from]--
		}
	}
	if to != "" {
		m := e.causes[effect]
		if m == nil {
			m = map[string]uint64{}
			e.causes[effect] = m
		}
		m[to]++
	}
}

func (e *ecosystem) summary(s *service, now time.Time) *bridgev1.ServiceSummary {
	sum := &bridgev1.ServiceSummary{Name: s.name, Versions: keys(s.versions), Capabilities: keys(s.caps), LastSeen: timestamppb.New(s.last)}
	deps := map[string]struct{}{}
	for d := range s.deps {
		deps[d] = struct{}{}
	}
	for k := range e.edges {
		if k.source == s.name {
			deps[k.target] = struct{}{}
		}
	}
	sum.Dependencies = keys(deps)
	worst := bridgev1.HealthStatus_HEALTH_STATUS_UNSPECIFIED
	for _, in := range s.instances {
		if in.stopped || now.Sub(in.last) > e.cfg.InstanceTTL {
			continue
		}
		sum.Instances++
		if in.health > worst {
			worst = in.health
		}
	}
	if sum.Instances == 0 && s.consul {
		worst = bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY
		if s.consulHealthy {
			worst = bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY
		}
	}
	sum.Health = worst
	for m := range s.methods {
		sum.DiscoveryMethods = append(sum.DiscoveryMethods, m)
	}
	if len(s.methods) == 0 && s.observed {
		sum.DiscoveryMethods = []bridgev1.DiscoveryMethod{bridgev1.DiscoveryMethod_DISCOVERY_METHOD_PROXY}
	}
	sort.Slice(sum.DiscoveryMethods, func(i, j int) bool { return sum.DiscoveryMethods[i] < sum.DiscoveryMethods[j] })
	return sum
}

func (e *ecosystem) list(now time.Time) []*bridgev1.ServiceSummary {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.listLocked(now)
}

func (e *ecosystem) listLocked(now time.Time) []*bridgev1.ServiceSummary {
	out := make([]*bridgev1.ServiceSummary, 0, len(e.services))
	for _, s := range e.services {
		out = append(out, e.summary(s, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (e *ecosystem) graph(now time.Time, window time.Duration) *bridgev1.GetServiceGraphResponse {
	e.mu.Lock()
	defer e.mu.Unlock()
	resp := &bridgev1.GetServiceGraphResponse{Services: e.listLocked(now), Impact: e.impact}
	for k, ser := range e.edges {
		sum := ser.Window(now, window)
		if sum.Requests == 0 {
			continue
		}
		resp.Edges = append(resp.Edges, &bridgev1.GraphEdge{Source: k.source, Target: k.target,
			RequestRate: sum.Requests / sum.Span.Seconds(), ErrorRate: sum.Errors / sum.Requests,
			P50: ms(sum.Quantile(0.5)), P99: ms(sum.Quantile(0.99)), Requests: uint64(math.Round(sum.Requests))})
	}
	sort.Slice(resp.Edges, func(i, j int) bool {
		if resp.Edges[i].Source != resp.Edges[j].Source {
			return resp.Edges[i].Source < resp.Edges[j].Source
		}
		return resp.Edges[i].Target < resp.Edges[j].Target
	})
	resp.CausalHints = e.hints(now)
	return resp
}

// onset finds the first of the recent fine buckets in which a service's
// error rate or median latency rose well above the earlier buckets.
func (e *ecosystem) onset(s *service, now time.Time) (time.Time, string, bool) {
	pts := s.inbound.Points(now, e.cfg.TrendPoints, 1)
	if len(pts) < 4 {
		return time.Time{}, "", false
	}
	half := len(pts) / 2
	var baseReq, baseErr float64
	var baseMed []float64
	for _, p := range pts[:half] {
		baseReq += p.Requests
		baseErr += p.Errors
		baseMed = append(baseMed, p.Median)
	}
	br := baseErr / baseReq
	bm := stats.Median(baseMed)
	for _, p := range pts[half:] {
		er := p.Errors / p.Requests
		if er >= math.Max(0.05, 2*br+0.02) {
			return p.Start, fmt.Sprintf("%s error rate rose from %.1f%% to %.1f%% at %s", s.name, 100*br, 100*er, p.Start.Format("15:04")), true
		}
		if bm > 0 && p.Median >= 1.5*bm {
			return p.Start, fmt.Sprintf("%s median latency rose from %.1fms to %.1fms at %s", s.name, bm, p.Median, p.Start.Format("15:04")), true
		}
	}
	return time.Time{}, "", false
}

// hints reports, for each service whose failed hops were caused by another
// service (by the traces' root causes), or whose trouble started after a
// callee's (by onset timing on a graph edge), the likely cause with evidence.
func (e *ecosystem) hints(now time.Time) []*bridgev1.CausalHint {
	type pair struct{ effect, cause string }
	found := map[pair]*bridgev1.CausalHint{}
	for effect, m := range e.causes {
		for cause, n := range m {
			if n == 0 || cause == effect || e.fails[effect] == 0 {
				continue
			}
			share := float64(n) / float64(e.fails[effect])
			found[pair{effect, cause}] = &bridgev1.CausalHint{EffectService: effect, CauseService: cause, Confidence: share,
				Evidence: fmt.Sprintf("%d of %d failed hops of %s in correlated traces had root cause %s", n, e.fails[effect], effect, cause)}
		}
	}
	for k := range e.edges {
		effect, cause := e.services[k.source], e.services[k.target]
		if effect == nil || cause == nil || k.source == k.target {
			continue
		}
		te, de, ok1 := e.onset(effect, now)
		tc, dc, ok2 := e.onset(cause, now)
		if !ok1 || !ok2 || tc.After(te) {
			continue
		}
		ev := fmt.Sprintf("%s calls %s; %s; %s", k.source, k.target, dc, de)
		if h := found[pair{k.source, k.target}]; h != nil {
			h.Evidence += "; " + ev
			h.Confidence = math.Min(1, h.Confidence+0.2)
		} else {
			found[pair{k.source, k.target}] = &bridgev1.CausalHint{EffectService: k.source, CauseService: k.target, Confidence: 0.4, Evidence: ev}
		}
	}
	out := make([]*bridgev1.CausalHint, 0, len(found))
	for _, h := range found {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].EffectService != out[j].EffectService {
			return out[i].EffectService < out[j].EffectService
		}
		return out[i].CauseService < out[j].CauseService
	})
	return out
}

// restore seeds the catalog from a snapshot (no live instances) and the
// latest impact analysis.
func (e *ecosystem) restore(list []*bridgev1.ServiceSummary, impact *bridgev1.EcosystemImpact) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if impact != nil {
		e.impact = impact
	}
	for _, sum := range list {
		s, _ := e.svc(sum.GetName())
		for _, v := range sum.GetVersions() {
			s.versions[v] = struct{}{}
		}
		for _, c := range sum.GetCapabilities() {
			s.caps[c] = struct{}{}
		}
		for _, d := range sum.GetDependencies() {
			s.deps[d] = struct{}{}
		}
		for _, m := range sum.GetDiscoveryMethods() {
			if m == bridgev1.DiscoveryMethod_DISCOVERY_METHOD_PROXY {
				s.observed = true
				continue
			}
			s.methods[m] = struct{}{}
			s.announced = true
		}
		if t := sum.GetLastSeen().AsTime(); t.After(s.last) {
			s.last = t
		}
	}
}
