package demo

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the demo services' requests. One Metrics is shared by every
// service registered on the same registry.
type Metrics struct {
	requests *prometheus.CounterVec
}

// NewMetrics registers the demo metrics on reg.
func NewMetrics(reg *prometheus.Registry) (*Metrics, error) {
	m := &Metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "omnibridge_demo_requests_total",
		Help: "Requests the demo services answered, by service, version, operation and HTTP status (400 is bad input).",
	}, []string{"service", "version", "operation", "status"})}
	if err := reg.Register(m.requests); err != nil {
		return nil, fmt.Errorf("register demo metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) observe(service, version, operation string, status int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(service, version, operation, strconv.Itoa(status)).Inc()
}
