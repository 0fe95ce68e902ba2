package analyze

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/omninode/bridge/controlplane/analyze/stats"
	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// EventSource replays stored events, oldest first. The pipeline's store
// implements it.
type EventSource interface {
	Replay(ctx context.Context, since time.Time, fn func(bus.Event) error) error
}

// CatalogService is one service of the Consul catalog.
type CatalogService struct {
	Name    string
	Version string
	Address string
	Healthy bool
}

// Config configures an Analyzer.
type Config struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives operational messages. Default discards.
	Log *slog.Logger
	// Registry receives the analyzer's metrics. Default: a private registry.
	Registry *prometheus.Registry
	// Pool is the PostgreSQL pool for the analyzer's own tables; nil keeps
	// everything in memory (the embedded mode, non-durable).
	Pool *pgxpool.Pool
	// Source replays stored events at start; nil skips the replay.
	Source EventSource
	// Layout buckets the route series. Default 60 × 1 min and 24 × 1 h.
	Layout stats.Layout
	// Trend is the latency trend test. Default 95% Mann-Kendall and a 10% change.
	Trend stats.TrendTest
	// TrendPoints is how many complete fine buckets the trend test and the
	// anomaly score look at. Default 15.
	TrendPoints int
	// MinBucketWeight is the fewest requests a bucket needs to give a
	// median to the trend test. Default 5.
	MinBucketWeight float64
	// MaxRoutes bounds the (service, route) pairs tracked; more are counted
	// as dropped. Default 20,000.
	MaxRoutes int
	// TraceTTL is how long a trace is kept after its last event. Default 10 min.
	TraceTTL time.Duration
	// MaxTraces bounds the traces kept (least recently updated go first).
	// Default 20,000.
	MaxTraces int
	// MaxSpansPerTrace bounds one trace's spans. Default 256.
	MaxSpansPerTrace int
	// MaxSessions bounds the journeys kept. Default 10,000.
	MaxSessions int
	// InstanceTTL is how long an instance counts as live after its last
	// event. Default 5 min.
	InstanceTTL time.Duration
	// FlushInterval is how often patterns and tools are written and expired
	// traces swept. Default 5 s.
	FlushInterval time.Duration
	// SnapshotInterval is how often the ecosystem is snapshotted into
	// service_ecosystem. Default 1 min.
	SnapshotInterval time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Now:              time.Now,
		Layout:           stats.DefaultLayout(),
		Trend:            stats.DefaultTrendTest(),
		TrendPoints:      15,
		MinBucketWeight:  5,
		MaxRoutes:        20000,
		TraceTTL:         10 * time.Minute,
		MaxTraces:        20000,
		MaxSpansPerTrace: 256,
		MaxSessions:      10000,
		InstanceTTL:      5 * time.Minute,
		FlushInterval:    5 * time.Second,
		SnapshotInterval: time.Minute,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Now == nil {
		return errors.New("config: Now is required")
	}
	if err := c.Layout.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	checks := []struct {
		name   string
		v, min int
	}{
		{"TrendPoints", c.TrendPoints, 3},
		{"MaxRoutes", c.MaxRoutes, 1},
		{"MaxTraces", c.MaxTraces, 1},
		{"MaxSpansPerTrace", c.MaxSpansPerTrace, 2},
		{"MaxSessions", c.MaxSessions, 1},
	}
	for _, ch := range checks {
		if ch.v < ch.min {
			return fmt.Errorf("config: %s is %d, must be >= %d", ch.name, ch.v, ch.min)
		}
	}
	if c.TrendPoints > c.Layout.FineCount {
		return fmt.Errorf("config: TrendPoints %d exceeds Layout.FineCount %d", c.TrendPoints, c.Layout.FineCount)
	}
	if c.Trend.Z <= 0 || c.Trend.MinPoints < 3 {
		return errors.New("config: Trend needs Z > 0 and MinPoints >= 3")
	}
	for name, d := range map[string]time.Duration{"TraceTTL": c.TraceTTL, "InstanceTTL": c.InstanceTTL, "FlushInterval": c.FlushInterval, "SnapshotInterval": c.SnapshotInterval} {
		if d <= 0 {
			return fmt.Errorf("config: %s must be > 0", name)
		}
	}
	return nil
}
