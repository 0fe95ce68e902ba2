package directives

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connected         prometheus.Gauge
	connecting        prometheus.Gauge
	handshakeTimeouts prometheus.Counter
	reconnects        prometheus.Counter
	applied           prometheus.Counter
	rejected          prometheus.Counter
	persistErrors     prometheus.Counter
	signalsDropped    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "omnibridge_sidecar_directive_stream_connected",
			Help: "1 while the directive stream is open and the control plane has answered its hello."}),
		connecting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "omnibridge_sidecar_directive_stream_connecting",
			Help: "1 while a directive stream's hello waits for the control plane's answer."}),
		handshakeTimeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_sidecar_directive_stream_handshake_timeouts_total",
			Help: "Directive stream attempts closed because the control plane did not answer the hello in time."}),
		reconnects:     prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_sidecar_directive_stream_reconnects_total", Help: "Directive stream reconnections."}),
		applied:        prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_sidecar_directive_snapshots_applied_total", Help: "Snapshots applied and acknowledged."}),
		rejected:       prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_sidecar_directive_snapshots_rejected_total", Help: "Snapshots rejected (previous version kept)."}),
		persistErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_sidecar_directive_persist_errors_total", Help: "Acknowledged snapshots that could not be persisted."}),
		signalsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_sidecar_signals_dropped_total", Help: "Critical signals dropped because the stream queue was full."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.connected, m.connecting, m.handshakeTimeouts, m.reconnects, m.applied, m.rejected, m.persistErrors, m.signalsDropped} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
