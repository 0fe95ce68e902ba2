package store

import "github.com/prometheus/client_golang/prometheus"

// metrics are the store's Prometheus metrics.
type metrics struct {
	writeSeconds *prometheus.HistogramVec
	rows         *prometheus.CounterVec
	expired      prometheus.Counter
	dropped      prometheus.Counter
	fallbacks    prometheus.Counter
	gaps         *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "omnibridge_store_write_seconds",
			Help:    "Duration of one batched event write, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"outcome"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_store_rows_total",
			Help: "Events offered to the store, by table and result (inserted or duplicate).",
		}, []string{"table", "result"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omnibridge_store_expired_events_total",
			Help: "Events not stored because they occurred before the retention window.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omnibridge_store_partitions_dropped_total",
			Help: "Day partitions dropped by retention.",
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omnibridge_store_staged_fallbacks_total",
			Help: "Batches whose direct COPY met an event stored already and were written again through the staging table (replays).",
		}),
		gaps: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "omnibridge_store_source_sequence_gaps",
			Help: "Sequence numbers missing between the events stored per source, summed by service (exact across replicas; from source_sequences).",
		}, []string{"service"}),
	}
	if reg != nil {
		reg.MustRegister(m.writeSeconds, m.rows, m.expired, m.dropped, m.fallbacks, m.gaps)
	}
	return m
}
