package hooks

import "github.com/prometheus/client_golang/prometheus"

// metrics are the receiver's Prometheus metrics. Labels carry only fixed
// vocabularies (kind, reason), never request data.
type metrics struct {
	received   *prometheus.CounterVec // kind
	rejected   *prometheus.CounterVec // reason
	emitted    *prometheus.CounterVec // kind
	duplicates *prometheus.CounterVec // kind
	unmatched  prometheus.Counter
	expired    prometheus.Counter
	pending    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_hooks_received_total", Help: "Hook requests received, by kind (lifecycle, execution).",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_hooks_rejected_total", Help: "Hook requests rejected, by reason.",
		}, []string{"reason"}),
		emitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_hooks_events_total", Help: "Events built from hooks and handed to the emitter, by kind.",
		}, []string{"kind"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_hooks_duplicates_total", Help: "Hook requests answered from an earlier one with the same idempotency_key, by kind.",
		}, []string{"kind"}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omnibridge_hooks_unmatched_results_total", Help: "Execution results that arrived with no pre-context (operation recorded as \"unknown\").",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omnibridge_hooks_pending_expired_total", Help: "Pre-contexts dropped because their results did not arrive within the pending TTL.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "omnibridge_hooks_pending", Help: "Pre-contexts waiting for their results.",
		}),
	}
	for _, c := range []prometheus.Collector{m.received, m.rejected, m.emitted, m.duplicates, m.unmatched, m.expired, m.pending} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{ReasonMalformed, ReasonTooLarge, ReasonContentType, ReasonMethod, ReasonMissingField,
		ReasonServiceMismatch, ReasonTooLong, ReasonOutOfRange, ReasonPendingFull} {
		m.rejected.WithLabelValues(r)
	}
	for _, k := range []string{kindLifecycle, kindExecution} {
		m.received.WithLabelValues(k)
		m.emitted.WithLabelValues(k)
		m.duplicates.WithLabelValues(k)
	}
	return m, nil
}
