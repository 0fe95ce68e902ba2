package mesh

import (
	"slices"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
)

// RouteStats gives the optimizer the route statistics it reads through
// optimize.StatsReader over arbitrary short windows, with what the analyzer's
// RouteStats API does not carry: methods, status and RPC-code counts, and a
// breakdown per upstream endpoint. It is an ingest.Observer fed with every
// newly stored communication event, keeping per route a ring of one-second
// buckets (bounded memory: Keep/1s buckets per route, at most MaxRoutes
// routes).
type RouteStats struct {
	keep      int // buckets per route
	maxRoutes int
	now       func() time.Time
	versions  func(endpoint string) string

	mu     sync.Mutex
	routes map[[2]string]*routeRing
	// Dropped counts events of routes beyond MaxRoutes.
	dropped uint64
}

// RouteStatsConfig configures RouteStats.
type RouteStatsConfig struct {
	// Keep is the longest window answered; default 10 minutes.
	Keep time.Duration
	// MaxRoutes bounds the (service, route) pairs kept; default 5,000.
	MaxRoutes int
	// Versions names the service version served at an upstream endpoint,
	// when known (the demo knows its canary); nil leaves it empty.
	Versions func(endpoint string) string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

type routeRing struct {
	buckets []*routeBucket
	methods []string
	traces  []string // recent slow or failed trace ids, newest last
}

type routeBucket struct {
	sec                     int64
	requests, errs, retries float64
	status                  map[int]float64
	rpc                     map[string]float64
	lat                     *ddsketch.DDSketch
	eps                     map[string]*epBucket
}

type epBucket struct {
	requests, errs float64
	lat            *ddsketch.DDSketch
}

// NewRouteStats returns an empty RouteStats.
func NewRouteStats(cfg RouteStatsConfig) *RouteStats {
	if cfg.Keep <= 0 {
		cfg.Keep = 10 * time.Minute
	}
	if cfg.MaxRoutes <= 0 {
		cfg.MaxRoutes = 5000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Versions == nil {
		cfg.Versions = func(string) string { return "" }
	}
	return &RouteStats{keep: int(cfg.Keep / time.Second), maxRoutes: cfg.MaxRoutes, now: cfg.Now,
		versions: cfg.Versions, routes: map[[2]string]*routeRing{}}
}

func newSketch() *ddsketch.DDSketch {
	s, _ := ddsketch.NewDefaultDDSketch(0.01) // 0.01 is a valid accuracy: no error
	return s
}

// Observe implements ingest.Observer: it counts communication events.
func (s *RouteStats) Observe(ev bus.Event, _ bool) {
	c, ok := ev.(*bridgev1.CommunicationIntelligenceEvent)
	if !ok {
		return
	}
	pm, rc := c.GetPerformanceMetrics(), c.GetRequestContext()
	service := pm.GetTargetService()
	if service == "" {
		service = c.GetEnvelope().GetSource().GetService()
	}
	route := rc.GetRoute()
	if route == "" {
		route = rc.GetPath()
	}
	if service == "" || route == "" {
		return
	}
	w := c.GetSampleWeight()
	if w < 1 {
		w = 1
	}
	at := s.now()
	if t := c.GetEnvelope().GetOccurredAt(); t != nil && t.AsTime().Before(at) && at.Sub(t.AsTime()) < time.Minute {
		at = t.AsTime()
	}
	sec := at.Unix()
	ms := float64(pm.GetResponseTime().AsDuration()) / float64(time.Millisecond)
	failed := !pm.GetSuccess()

	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{service, route}
	r := s.routes[k]
	if r == nil {
		if len(s.routes) >= s.maxRoutes {
			s.dropped++
			return
		}
		r = &routeRing{buckets: make([]*routeBucket, s.keep)}
		s.routes[k] = r
	}
	b := r.buckets[int(sec%int64(s.keep))]
	if b == nil || b.sec != sec {
		b = &routeBucket{sec: sec, status: map[int]float64{}, rpc: map[string]float64{}, lat: newSketch(), eps: map[string]*epBucket{}}
		r.buckets[int(sec%int64(s.keep))] = b
	}
	b.requests += w
	b.retries += w * float64(pm.GetRetries())
	if failed {
		b.errs += w
		if code := pm.GetRpcCode(); code != "" && code != "ok" {
			b.rpc[code] += w
		}
	}
	b.status[int(pm.GetStatusCode())] += w
	_ = b.lat.AddWithCount(max(ms, 0), w)
	if m := rc.GetMethod(); m != "" && !slices.Contains(r.methods, m) && len(r.methods) < 16 {
		r.methods = append(r.methods, m)
	}
	if ep := pm.GetUpstreamEndpoint(); ep != "" {
		e := b.eps[ep]
		if e == nil {
			if len(b.eps) >= 16 {
				return
			}
			e = &epBucket{lat: newSketch()}
			b.eps[ep] = e
		}
		e.requests += w
		if failed {
			e.errs += w
		}
		_ = e.lat.AddWithCount(max(ms, 0), w)
	}
	if tid := c.GetEnvelope().GetTrace().GetTraceId(); tid != "" && (failed || ms > 1000) {
		r.traces = append(r.traces, tid)
		if len(r.traces) > 5 {
			r.traces = r.traces[len(r.traces)-5:]
		}
	}
}

// Routes implements optimize.StatsReader.
func (s *RouteStats) Routes(service string, window time.Duration) []optimize.RouteSnapshot {
	now := s.now().Unix()
	n := min(int64(window/time.Second), int64(s.keep))
	if n < 1 {
		n = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []optimize.RouteSnapshot
	for k, r := range s.routes {
		if service != "" && k[0] != service {
			continue
		}
		snap := optimize.RouteSnapshot{Service: k[0], Route: k[1], Window: window, Methods: slices.Clone(r.methods),
			StatusCounts: map[int]uint64{}, RPCCodes: map[string]uint64{}, SampleTraceIDs: slices.Clone(r.traces)}
		lat := newSketch()
		type epAgg struct {
			req, errs float64
			lat       *ddsketch.DDSketch
		}
		eps := map[string]*epAgg{}
		var req, errs, retries float64
		status, rpc := map[int]float64{}, map[string]float64{}
		for _, b := range r.buckets {
			if b == nil || b.sec <= now-n || b.sec > now {
				continue
			}
			req += b.requests
			errs += b.errs
			retries += b.retries
			for c, v := range b.status {
				status[c] += v
			}
			for c, v := range b.rpc {
				rpc[c] += v
			}
			_ = lat.MergeWith(b.lat)
			for ep, e := range b.eps {
				a := eps[ep]
				if a == nil {
					a = &epAgg{lat: newSketch()}
					eps[ep] = a
				}
				a.req += e.requests
				a.errs += e.errs
				_ = a.lat.MergeWith(e.lat)
			}
		}
		if req == 0 {
			continue
		}
		snap.Requests, snap.Errors, snap.Retries = uint64(req+0.5), uint64(errs+0.5), uint64(retries+0.5)
		for c, v := range status {
			snap.StatusCounts[c] = uint64(v + 0.5)
		}
		for c, v := range rpc {
			snap.RPCCodes[c] = uint64(v + 0.5)
		}
		snap.P50, snap.P90, snap.P99, snap.P999 = quantile(lat, 0.5), quantile(lat, 0.9), quantile(lat, 0.99), quantile(lat, 0.999)
		if len(eps) > 1 {
			for ep, a := range eps {
				snap.Endpoints = append(snap.Endpoints, optimize.EndpointStats{Endpoint: ep, Version: s.versions(ep),
					Requests: uint64(a.req + 0.5), Errors: uint64(a.errs + 0.5), P99: quantile(a.lat, 0.99)})
			}
			slices.SortFunc(snap.Endpoints, func(a, b optimize.EndpointStats) int {
				if a.Endpoint < b.Endpoint {
					return -1
				}
				return 1
			})
		}
		out = append(out, snap)
	}
	slices.SortFunc(out, func(a, b optimize.RouteSnapshot) int {
		if a.Service+a.Route < b.Service+b.Route {
			return -1
		}
		return 1
	})
	return out
}

func quantile(s *ddsketch.DDSketch, q float64) time.Duration {
	if s.IsEmpty() {
		return 0
	}
	v, err := s.GetValueAtQuantile(q)
	if err != nil {
		return 0
	}
	return time.Duration(v * float64(time.Millisecond))
}
