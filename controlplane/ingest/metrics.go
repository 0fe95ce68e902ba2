package ingest

import "github.com/prometheus/client_golang/prometheus"

// metrics are the ingest's Prometheus metrics.
type metrics struct {
	lag          *prometheus.GaugeVec
	batchSize    *prometheus.HistogramVec
	writeSeconds *prometheus.HistogramVec
	writeErrors  *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	events       *prometheus.CounterVec
	procErrors   *prometheus.CounterVec
	commits      *prometheus.CounterVec
	delay        *prometheus.HistogramVec
	paused       prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry, depth func(lane string) float64) *metrics {
	m := &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "omnibridge_ingest_consumer_lag",
			Help: "Records between the last polled offset and the high watermark, per partition.",
		}, []string{"topic", "partition"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "omnibridge_ingest_batch_size",
			Help:    "Events per store write, by lane.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}, []string{"lane"}),
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "omnibridge_ingest_write_seconds",
			Help:    "Duration of successful store writes, by lane.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"lane"}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_ingest_write_errors_total",
			Help: "Failed store writes (retried with backoff), by lane.",
		}, []string{"lane"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_ingest_dead_letters_total",
			Help: "Records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_ingest_events_total",
			Help: "Decoded events by lane and result (inserted or duplicate).",
		}, []string{"lane", "result"}),
		procErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_ingest_processor_errors_total",
			Help: "Processor calls that returned an error, by lane.",
		}, []string{"lane"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_ingest_commits_total",
			Help: "Offset commits by result.",
		}, []string{"result"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "omnibridge_ingest_processing_delay_seconds",
			Help:    "Time from poll to stored and processed, by lane.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"lane"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "omnibridge_ingest_paused",
			Help: "1 while fetching is paused because the store is failing.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.lag, m.batchSize, m.writeSeconds, m.writeErrors, m.deadLetters, m.events,
			m.procErrors, m.commits, m.delay, m.paused)
		for _, lane := range []string{laneFast, laneRoutine} {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "omnibridge_ingest_lane_queue_depth",
				Help:        "Events queued in a lane, waiting for their store write.",
				ConstLabels: prometheus.Labels{"lane": lane},
			}, func() float64 { return depth(lane) }))
		}
	}
	return m
}
