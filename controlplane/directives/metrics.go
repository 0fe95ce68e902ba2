package directives

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connected   prometheus.Gauge
	published   prometheus.Counter
	sent        prometheus.Counter
	acks        prometheus.Counter
	rejects     prometheus.Counter
	badMessages prometheus.Counter
	kvErrors    prometheus.Counter
	signals     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "omnibridge_directives_streams", Help: "Sidecar directive streams open on this replica."}),
		published:   prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_directives_published_total", Help: "Snapshot versions published."}),
		sent:        prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_directives_snapshots_sent_total", Help: "Snapshots sent to sidecars."}),
		acks:        prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_directives_acks_total", Help: "Snapshot acknowledgements received."}),
		rejects:     prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_directives_rejects_total", Help: "Snapshot rejections received."}),
		badMessages: prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_directives_bad_messages_total", Help: "Malformed sync messages (stream closed with InvalidArgument)."}),
		kvErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_directives_kv_errors_total", Help: "KV reads or writes that failed or held malformed values."}),
		signals:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_directives_signals_total", Help: "Critical signals received on streams, by result (new, duplicate)."}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.connected, m.published, m.sent, m.acks, m.rejects, m.badMessages, m.kvErrors, m.signals} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
