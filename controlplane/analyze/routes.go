package analyze

import (
	"hash/maphash"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omninode/bridge/controlplane/analyze/stats"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"
)

// routeKey names a route: a (service, route or operation or tool) pair.
type routeKey struct{ service, route string }

type routeState struct {
	series  *stats.Series
	samples [5]string // recent trace ids of failed requests, ring
	next    int
}

type routeShard struct {
	mu sync.Mutex
	m  map[routeKey]*routeState
}

// routeTable holds the route series, sharded by key to keep lock contention
// low under concurrent processors.
type routeTable struct {
	cfg     Config
	seed    maphash.Seed
	shards  [32]routeShard
	count   atomic.Int64
	dropped prometheus.Counter
}

func newRouteTable(cfg Config, dropped prometheus.Counter) *routeTable {
	t := &routeTable{cfg: cfg, seed: maphash.MakeSeed(), dropped: dropped}
	for i := range t.shards {
		t.shards[i].m = map[routeKey]*routeState{}
	}
	return t
}

func (t *routeTable) shard(k routeKey) *routeShard {
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.WriteString(k.service)
	h.WriteByte(0)
	h.WriteString(k.route)
	return &t.shards[h.Sum64()%uint64(len(t.shards))]
}

// add records a sample; traceID is kept as evidence when the sample failed.
func (t *routeTable) add(k routeKey, x stats.Sample, traceID string) {
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.m[k]
	if r == nil {
		if t.count.Load() >= int64(t.cfg.MaxRoutes) {
			t.dropped.Inc()
			return
		}
		t.count.Add(1)
		r = &routeState{series: stats.NewSeries(t.cfg.Layout)}
		s.m[k] = r
	}
	r.series.Add(x)
	if x.Failed && traceID != "" {
		r.samples[r.next%len(r.samples)] = traceID
		r.next++
	}
}

// addCall attributes downstream time to a route.
func (t *routeTable) addCall(k routeKey, at time.Time, callee string, ms, weight float64) {
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.m[k]; r != nil {
		r.series.AddCall(at, callee, ms, weight)
	}
}

// windowOf maps the API window to a duration.
func (t *routeTable) windowOf(w bridgev1.Window) (time.Duration, bridgev1.Window) {
	switch w {
	case bridgev1.Window_WINDOW_1M:
		return time.Minute, w
	case bridgev1.Window_WINDOW_1H:
		return time.Hour, w
	case bridgev1.Window_WINDOW_BASELINE:
		return t.cfg.Layout.Coarse * time.Duration(t.cfg.Layout.CoarseCount), w
	default:
		return 5 * time.Minute, bridgev1.Window_WINDOW_5M
	}
}

// stat computes the statistics of one route; nil when the window is empty.
func (t *routeTable) stat(k routeKey, r *routeState, now time.Time, w bridgev1.Window) *bridgev1.RouteStats {
	d, w := t.windowOf(w)
	sum := r.series.Window(now, d)
	if sum.Requests == 0 {
		return nil
	}
	base := r.series.Window(now, t.cfg.Layout.Coarse*time.Duration(t.cfg.Layout.CoarseCount))
	st := &bridgev1.RouteStats{
		Service:              k.service,
		Route:                k.route,
		Window:               w,
		Requests:             uint64(math.Round(sum.Requests)),
		RequestRate:          sum.Requests / sum.Span.Seconds(),
		ErrorRate:            sum.Errors / sum.Requests,
		OperationSuccessRate: 1 - sum.Errors/sum.Requests,
		P50:                  ms(sum.Quantile(0.5)),
		P90:                  ms(sum.Quantile(0.9)),
		P99:                  ms(sum.Quantile(0.99)),
		P999:                 ms(sum.Quantile(0.999)),
		VsHistoricalAvg:      1,
	}
	if bm := base.Mean(); bm > 0 {
		st.VsHistoricalAvg = sum.Mean() / bm
	}
	tr, score := t.trend(r.series, now)
	st.PerformanceTrend = trendOf(tr.Trend)
	st.AnomalyScore = score
	st.Anomalous = score > stats.AnomalyThreshold
	st.Bottlenecks = bottlenecks(sum)
	for i := 0; i < len(r.samples); i++ {
		// newest first
		id := r.samples[((r.next-1-i)%len(r.samples)+len(r.samples))%len(r.samples)]
		if id != "" && i < r.next {
			st.SampleTraceIds = append(st.SampleTraceIds, id)
		}
	}
	return st
}

// trend tests the per-bucket medians of the complete buckets before now and
// scores the latest bucket against them.
func (t *routeTable) trend(s *stats.Series, now time.Time) (stats.TrendResult, float64) {
	pts := s.Points(now, t.cfg.TrendPoints+1, t.cfg.MinBucketWeight)
	cur := now.Add(-time.Duration(now.UnixNano() % int64(t.cfg.Layout.Fine)))
	var complete []float64
	var latest float64
	haveLatest := false
	for _, p := range pts {
		if p.Start.Equal(cur) {
			latest, haveLatest = p.Median, true
			continue
		}
		complete = append(complete, p.Median)
	}
	res := t.cfg.Trend.TestTrend(complete)
	score := 0.0
	switch {
	case haveLatest:
		score = stats.AnomalyScore(latest, complete)
	case len(complete) > 3:
		score = stats.AnomalyScore(complete[len(complete)-1], complete[:len(complete)-1])
	}
	return res, score
}

func trendOf(t stats.Trend) bridgev1.PerformanceTrend {
	switch t {
	case stats.TrendRising:
		return bridgev1.PerformanceTrend_PERFORMANCE_TREND_DEGRADING
	case stats.TrendFalling:
		return bridgev1.PerformanceTrend_PERFORMANCE_TREND_IMPROVING
	case stats.TrendStable:
		return bridgev1.PerformanceTrend_PERFORMANCE_TREND_STABLE
	}
	return bridgev1.PerformanceTrend_PERFORMANCE_TREND_UNSPECIFIED
}

// bottlenecks splits the mean latency into upstream time (time to first
// byte), proxy and transfer time (the rest), and the share of downstream
// calls per callee seen in correlated traces.
func bottlenecks(sum stats.Summary) []*bridgev1.Bottleneck {
	var out []*bridgev1.Bottleneck
	mean := sum.Mean()
	if sum.TTFBCount > 0 && mean > 0 {
		up := math.Min(1, (sum.TTFBMs/sum.TTFBCount)/mean)
		out = append(out, &bridgev1.Bottleneck{Name: "upstream", Share: up}, &bridgev1.Bottleneck{Name: "proxy", Share: 1 - up})
	}
	if sum.SumMs > 0 {
		for callee, v := range sum.Calls {
			out = append(out, &bridgev1.Bottleneck{Name: "call:" + callee, Share: math.Min(1, v/sum.SumMs)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Share != out[j].Share {
			return out[i].Share > out[j].Share
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func ms(v float64) *durationpb.Duration {
	return durationpb.New(time.Duration(v * float64(time.Millisecond)).Round(time.Microsecond))
}

// list computes statistics for every route of service (all when empty),
// busiest first.
func (t *routeTable) list(service string, now time.Time, w bridgev1.Window, limit int) []*bridgev1.RouteStats {
	var out []*bridgev1.RouteStats
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, r := range s.m {
			if service != "" && k.service != service {
				continue
			}
			if st := t.stat(k, r, now, w); st != nil {
				out = append(out, st)
			}
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Route < out[j].Route
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// get computes one route's statistics.
func (t *routeTable) get(k routeKey, now time.Time, w bridgev1.Window) *bridgev1.RouteStats {
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.m[k]; r != nil {
		return t.stat(k, r, now, w)
	}
	return nil
}

// RouteExport is one route's buckets, for merging replicas.
type RouteExport struct {
	Service string               `json:"service"`
	Route   string               `json:"route"`
	Buckets []stats.BucketExport `json:"buckets"`
}

func (t *routeTable) export() []RouteExport {
	var out []RouteExport
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, r := range s.m {
			out = append(out, RouteExport{Service: k.service, Route: k.route, Buckets: r.series.Export()})
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Route < out[j].Route
	})
	return out
}

func (t *routeTable) merge(in []RouteExport) error {
	for _, e := range in {
		k := routeKey{e.Service, e.Route}
		s := t.shard(k)
		s.mu.Lock()
		r := s.m[k]
		if r == nil {
			t.count.Add(1)
			r = &routeState{series: stats.NewSeries(t.cfg.Layout)}
			s.m[k] = r
		}
		err := r.series.Merge(e.Buckets)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
