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
	seen           sync.Map
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
			Help: "Requests the proxy refused to forward, by reason.",
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

func (m *metrics) observe(rt, method string, status int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch,
		http.MethodHead, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		method = "OTHER"
	}
	sl := "0"
	if status > 0 && status < len(statusLabels) {
		sl = statusLabels[status]
	}
	m.requests.WithLabelValues(rt, method, sl).Inc()
	m.latency.WithLabelValues(rt).Observe(d.Seconds())
}
