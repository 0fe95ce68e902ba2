package policy

import (
	"strconv"
	"strings"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics; a nil *metrics counts nothing.
type metrics struct {
	decisions *prometheus.CounterVec
	snapshots *prometheus.CounterVec
	ver       prometheus.Gauge
	signals   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_policy_decisions_total",
			Help: "Policy decisions taken on requests, by directive kind, action and whether the directive was in dry-run (dry-run decisions did not change traffic).",
		}, []string{"kind", "action", "dry_run"}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_policy_snapshots_total",
			Help: "Directive snapshots offered to the engine, by result (applied, rejected, stale).",
		}, []string{"result"}),
		ver: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "omnibridge_policy_snapshot_version",
			Help: "Version of the directive snapshot in force.",
		}),
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_policy_signals_total",
			Help: "Critical signals detected (error_burst, latency_breach, breaker_opened), after the one-per-route-per-second throttle.",
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.decisions, m.snapshots, m.ver, m.signals} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) decision(en *entry, action string) {
	if m != nil {
		m.decisions.WithLabelValues(en.kindName, action, strconv.FormatBool(en.dryRun)).Inc()
	}
}

func (m *metrics) snapshot(result string) {
	if m != nil {
		m.snapshots.WithLabelValues(result).Inc()
	}
}

func (m *metrics) version(v uint64) {
	if m != nil {
		m.ver.Set(float64(v))
	}
}

func (m *metrics) signal(k bridgev1.SignalKind) {
	if m != nil {
		m.signals.WithLabelValues(strings.ToLower(strings.TrimPrefix(k.String(), "SIGNAL_KIND_"))).Inc()
	}
}
