package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxRoutes bounds the distinct route labels; later routes share "{other}".
const maxRoutes = 1000

type metrics struct {
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	rejected       *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	seen           sync.Map // route label -> struct{}
	routes         sync.Map // route template or label -> *routeMetrics
	nRoutes        atomic.Int64
}

var statusLabels = func() (s [600]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return
}()

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnibridge", Subsystem: "sidecar", Name: "requests_total",
			Help: "Proxied requests by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "omnibridge", Subsystem: "sidecar", Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnibridge", Subsystem: "sidecar", Name: "requests_rejected_total",
			Help: "Requests the proxy refused to forward, by reason: its own checks, Go's HTTP parser (answered before the proxy sees them) and failed TLS handshakes.",
		}, []string{"reason"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnibridge", Subsystem: "sidecar", Name: "upstream_errors_total",
			Help: "Requests that failed between the proxy and the upstream, by reason.",
		}, []string{"reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency, m.rejected, m.upstreamErrors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register proxy metrics: %w", err)
			}
		}
	}
	return m, nil
}

// routeMetrics caches the metric children of one route label, so the
// request path does not hash label values (WithLabelValues) per request.
type routeMetrics struct {
	label   string
	latency prometheus.Observer
	mu      sync.Mutex // serialises additions to counters
	// counters is copy-on-write: readers load it without locking.
	counters atomic.Pointer[[]statusCounter]
}

type statusCounter struct {
	key int32 // method class * 1000 + status
	c   prometheus.Counter
}

// route returns the cached metrics of a route template, bounding the number
// of distinct routes: past maxRoutes, new routes share "{other}".
func (m *metrics) route(rt string) *routeMetrics {
	if v, ok := m.routes.Load(rt); ok {
		return v.(*routeMetrics)
	}
	label := m.routeLabel(rt)
	if v, ok := m.routes.Load(label); ok {
		return v.(*routeMetrics)
	}
	rm := &routeMetrics{label: label, latency: m.latency.WithLabelValues(label)}
	v, _ := m.routes.LoadOrStore(label, rm)
	return v.(*routeMetrics)
}

// routeLabel bounds the number of distinct routes.
func (m *metrics) routeLabel(rt string) string {
	if _, ok := m.seen.Load(rt); ok {
		return rt
	}
	if m.nRoutes.Add(1) > maxRoutes {
		m.nRoutes.Add(-1)
		return "{other}"
	}
	if _, loaded := m.seen.LoadOrStore(rt, struct{}{}); loaded {
		m.nRoutes.Add(-1)
	}
	return rt
}

var methods = [...]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch,
	http.MethodHead, http.MethodOptions, http.MethodConnect, http.MethodTrace, "OTHER"}

func methodClass(method string) int32 {
	for i, m := range methods[:len(methods)-1] {
		if method == m {
			return int32(i)
		}
	}
	return int32(len(methods) - 1)
}

func (m *metrics) observe(rm *routeMetrics, method string, status int, d time.Duration) {
	if status < 0 || status >= len(statusLabels) {
		status = 0
	}
	key := methodClass(method)*1000 + int32(status)
	var c prometheus.Counter
	if cs := rm.counters.Load(); cs != nil {
		for i := range *cs {
			if (*cs)[i].key == key {
				c = (*cs)[i].c
				break
			}
		}
	}
	if c == nil {
		c = m.counter(rm, key)
	}
	c.Inc()
	rm.latency.Observe(d.Seconds())
}

// counter adds the requests_total child of (route, method, status).
func (m *metrics) counter(rm *routeMetrics, key int32) prometheus.Counter {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	var cur []statusCounter
	if cs := rm.counters.Load(); cs != nil {
		cur = *cs
	}
	for _, sc := range cur {
		if sc.key == key {
			return sc.c
		}
	}
	c := m.requests.WithLabelValues(rm.label, methods[key/1000], statusLabels[key%1000])
	next := append(append(make([]statusCounter, 0, len(cur)+1), cur...), statusCounter{key, c})
	rm.counters.Store(&next)
	return c
}
