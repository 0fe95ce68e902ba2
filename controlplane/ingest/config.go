package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// DefaultGroup is the consumer group of the control plane's replicas.
const DefaultGroup = "omnibridge-controlplane"

// Config configures an Ingest.
type Config struct {
	// Bus says how to reach the brokers. Required.
	Bus bus.Config
	// Group is the consumer group; replicas sharing it share the partitions.
	// Default DefaultGroup.
	Group string
	// Topics to consume; default bus.Topics.
	Topics []string
	// Store receives every batch before anything else sees it. Required.
	Store EventWriter
	// Processors receive the newly stored events by type.
	Processors Processors
	// Observers see every newly stored event with its lane.
	Observers []Observer
	// Registry receives the metrics; nil registers nowhere.
	Registry *prometheus.Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Tracer makes one span per batch; default no tracing.
	Tracer trace.TracerProvider

	// BatchSize is the routine lane's largest batch; default 5000.
	BatchSize int
	// BatchWait is the longest the routine lane waits to fill a batch;
	// default 50ms. A batch is written earlier when it is full or when no
	// event arrived for 2ms (the lane keeps up), so it bounds the batching
	// delay only while events keep trickling in.
	BatchWait time.Duration
	// Writers is how many routine-lane batches are written concurrently;
	// default 4. Offsets are tracked per record, so batches may finish in any
	// order; processors are called from several goroutines at once.
	Writers int
	// FastBatchSize is the fast lane's largest batch; default 64. The fast
	// lane never waits: it writes what is queued.
	FastBatchSize int
	// QueueSize bounds each lane's queue in events; default 50,000. A full
	// routine queue stops polling (backpressure) until it drains.
	QueueSize int
	// LatencyFactor K: an event whose latency exceeds K times its route's
	// recent norm (an EWMA) is critical; default 5.
	LatencyFactor float64
	// LatencyMinSamples is how many events a route needs before its norm
	// counts; default 20.
	LatencyMinSamples int
	// LatencyFloor: latencies below it are never critical; default 10ms.
	LatencyFloor time.Duration
	// RetryMin and RetryMax bound the backoff between failed store writes;
	// defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// RevokeTimeout bounds how long a rebalance waits for the revoked
	// partitions' queued events to be written before it commits what is done
	// and hands them over; default 10s.
	RevokeTimeout time.Duration
	// ExtraOpts are appended to the consumer options (tests, tuning).
	ExtraOpts []kgo.Opt
}

// DefaultConfig returns the defaults described on each field.
func DefaultConfig() Config {
	return Config{
		Group:             DefaultGroup,
		Topics:            bus.Topics,
		BatchSize:         5000,
		BatchWait:         50 * time.Millisecond,
		FastBatchSize:     64,
		Writers:           4,
		QueueSize:         50_000,
		LatencyFactor:     5,
		LatencyMinSamples: 20,
		LatencyFloor:      10 * time.Millisecond,
		RetryMin:          100 * time.Millisecond,
		RetryMax:          5 * time.Second,
		RevokeTimeout:     10 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Group == "" {
		c.Group = d.Group
	}
	if len(c.Topics) == 0 {
		c.Topics = d.Topics
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.BatchWait == 0 {
		c.BatchWait = d.BatchWait
	}
	if c.FastBatchSize == 0 {
		c.FastBatchSize = d.FastBatchSize
	}
	if c.Writers == 0 {
		c.Writers = d.Writers
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.LatencyFactor == 0 {
		c.LatencyFactor = d.LatencyFactor
	}
	if c.LatencyMinSamples == 0 {
		c.LatencyMinSamples = d.LatencyMinSamples
	}
	if c.LatencyFloor == 0 {
		c.LatencyFloor = d.LatencyFloor
	}
	if c.RetryMin == 0 {
		c.RetryMin = d.RetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = d.RetryMax
	}
	if c.RevokeTimeout == 0 {
		c.RevokeTimeout = d.RevokeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the configuration (after defaults) and names the bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := c.Bus.Validate(); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if c.Store == nil {
		return errors.New("ingest: store is required")
	}
	switch {
	case c.BatchSize < 1 || c.BatchSize > 100_000:
		return fmt.Errorf("ingest: batch size %d out of range 1..100000", c.BatchSize)
	case c.FastBatchSize < 1 || c.FastBatchSize > c.BatchSize:
		return fmt.Errorf("ingest: fast batch size %d out of range 1..batch size", c.FastBatchSize)
	case c.Writers < 1 || c.Writers > 64:
		return fmt.Errorf("ingest: writers %d out of range 1..64", c.Writers)
	case c.QueueSize < c.BatchSize:
		return fmt.Errorf("ingest: queue size %d must be at least the batch size %d", c.QueueSize, c.BatchSize)
	case c.BatchWait < time.Millisecond || c.BatchWait > time.Minute:
		return fmt.Errorf("ingest: batch wait %s out of range 1ms..1m", c.BatchWait)
	case c.LatencyFactor <= 1:
		return fmt.Errorf("ingest: latency factor %g must be above 1", c.LatencyFactor)
	case c.LatencyMinSamples < 1:
		return fmt.Errorf("ingest: latency min samples %d must be at least 1", c.LatencyMinSamples)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("ingest: retry backoff %s..%s is not a range", c.RetryMin, c.RetryMax)
	case c.RevokeTimeout <= 0:
		return errors.New("ingest: revoke timeout must be positive")
	}
	return nil
}
