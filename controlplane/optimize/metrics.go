package optimize

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	passes    prometheus.Counter
	proposals *prometheus.CounterVec
	applied   *prometheus.CounterVec
	rollbacks *prometheus.CounterVec
	signals   *prometheus.CounterVec
	cooldowns prometheus.Counter
	badModes  prometheus.Counter
	scores    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		passes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_optimize_passes_total", Help: "Evaluation passes."}),
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_optimize_proposals_total", Help: "Recommendations proposed, by kind."}, []string{"kind"}),
		applied:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_optimize_applied_total", Help: "Recommendations put in force, by kind and mode."}, []string{"kind", "mode"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_optimize_rollbacks_total", Help: "Rollbacks, by trigger (auto, operator)."}, []string{"trigger"}),
		signals:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_optimize_signals_total", Help: "Critical signals reacted to, by kind."}, []string{"kind"}),
		cooldowns: prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_optimize_cooldown_skips_total", Help: "Proposals held back by a cool-down."}),
		badModes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_optimize_bad_mode_overrides_total", Help: "Malformed mode overrides in the KV store (ignored)."}),
		scores: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "omnibridge_optimize_effectiveness_score", Help: "Measured effectiveness scores, -1 to 1.",
			Buckets: []float64{-1, -0.5, -0.1, 0, 0.1, 0.5, 1}}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.passes, m.proposals, m.applied, m.rollbacks, m.signals, m.cooldowns, m.badModes, m.scores} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
