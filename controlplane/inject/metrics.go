package inject

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the webhook.
type metrics struct {
	// admissions counts admission requests by result: injected, skipped
	// (left alone by the rules), failed_open (an error; admitted uninjected)
	// and malformed (not an AdmissionReview; HTTP 400).
	admissions *prometheus.CounterVec
	// failures counts errors by reason (request, settings, namespace,
	// timeout, internal); each one is a pod admitted without a sidecar.
	failures *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_inject_admissions_total",
			Help: "Admission requests by result (injected, skipped, failed_open, malformed).",
		}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_inject_failures_total",
			Help: "Injection errors by reason; each pod was admitted without a sidecar (fail open).",
		}, []string{"reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "omnibridge_inject_admission_duration_seconds",
			Help:    "Time to answer an admission request.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.admissions, m.failures, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register inject metrics: %w", err)
		}
	}
	return m, nil
}
