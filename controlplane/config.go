package controlplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/omninode/bridge/controlplane/ingest"
	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a control plane. Empty Postgres, Redis or Consul select
// the embedded, non-durable implementation of that part.
type Config struct {
	// Bus reaches the brokers; Bus.Brokers is required.
	Bus bus.Config
	// Postgres is the PostgreSQL DSN; empty uses the embedded store.
	Postgres string
	// Redis is the Redis address host:port; empty uses the embedded cache.
	Redis string
	// Consul is the Consul HTTP address host:port; empty uses the embedded
	// KV and no catalog.
	Consul string
	// Listen is the HTTP address of /metrics, /livez, /readyz and the
	// Connect APIs (HTTP/1.1 and HTTP/2 cleartext); default 127.0.0.1:8090.
	// Port 0 picks a free one (see ControlPlane.Addr).
	Listen string
	// Group is the consumer group; default ingest.DefaultGroup.
	Group string
	// Retention of detailed events; default 90 days.
	Retention time.Duration
	// PatternRetention of intelligence patterns; default 365 days.
	PatternRetention time.Duration
	// BatchSize and BatchWait tune the routine lane; defaults 5000 and 50ms.
	BatchSize int
	BatchWait time.Duration
	// ShutdownTimeout bounds the HTTP server's graceful shutdown; default 5s.
	ShutdownTimeout time.Duration
	// Now is the clock for partitions and retention; default time.Now.
	Now func() time.Time
	// Registry receives every metric; default a new registry.
	Registry *prometheus.Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Tracer; default no tracing.
	Tracer trace.TracerProvider
}

// DefaultConfig returns the defaults described on each field.
func DefaultConfig() Config {
	return Config{
		Listen:           "127.0.0.1:8090",
		Group:            ingest.DefaultGroup,
		Retention:        90 * 24 * time.Hour,
		PatternRetention: 365 * 24 * time.Hour,
		BatchSize:        5000,
		BatchWait:        50 * time.Millisecond,
		ShutdownTimeout:  5 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.Group == "" {
		c.Group = d.Group
	}
	if c.Retention == 0 {
		c.Retention = d.Retention
	}
	if c.PatternRetention == 0 {
		c.PatternRetention = d.PatternRetention
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.BatchWait == 0 {
		c.BatchWait = d.BatchWait
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
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
		return fmt.Errorf("controlplane: %w", err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("controlplane: listen %q is not host:port", c.Listen)
	}
	if c.Redis != "" {
		if _, _, err := net.SplitHostPort(c.Redis); err != nil {
			return fmt.Errorf("controlplane: redis %q is not host:port", c.Redis)
		}
	}
	if c.Retention < 24*time.Hour || c.PatternRetention < 24*time.Hour {
		return errors.New("controlplane: retention and pattern retention must be at least 24h")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("controlplane: shutdown timeout must be positive")
	}
	return nil
}
