package hooks

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink receives the events the receiver builds. Emit must not block (the
// sidecar's emitter queues or spools them).
type Sink interface {
	Emit(bus.Event)
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultPendingTTL     = 10 * time.Minute
	DefaultMaxPending     = 10_000
	DefaultIdempotencyTTL = 10 * time.Minute
	// MaxExecutionTime is the longest execution_time a hook may report.
	MaxExecutionTime = 24 * time.Hour
)

// Config configures a Server.
type Config struct {
	// Service is the name of the service behind the sidecar (--service).
	// Required: hooks naming another service are rejected.
	Service string
	// MaxBodyBytes caps a hook request body; larger ones get 413 (JSON) or
	// resource_exhausted (Connect/gRPC). Default 1 MiB; allowed 1 KiB to 64 MiB.
	MaxBodyBytes int64
	// PendingTTL is how long a pre-context waits for its results before it is
	// dropped (and counted). Default 10m; allowed 1s to 24h.
	PendingTTL time.Duration
	// MaxPending caps the pre-contexts waiting for results, and separately the
	// remembered idempotency keys. A pre-context over the cap is refused
	// (429 / resource_exhausted); the oldest idempotency key is forgotten.
	// Default 10,000; allowed 1 to 10,000,000.
	MaxPending int
	// IdempotencyTTL is how long a repeated idempotency_key gets the first
	// answer. Default 10m; allowed 1s to 24h.
	IdempotencyTTL time.Duration
	// Registry receives the omnibridge_hooks_* metrics. Nil means a private
	// registry (never the global default).
	Registry *prometheus.Registry
	// Logger logs rejections (reason only, never the payload). Nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults for service.
func DefaultConfig(service string) Config {
	return Config{
		Service:        service,
		MaxBodyBytes:   DefaultMaxBodyBytes,
		PendingTTL:     DefaultPendingTTL,
		MaxPending:     DefaultMaxPending,
		IdempotencyTTL: DefaultIdempotencyTTL,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Service)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.PendingTTL == 0 {
		c.PendingTTL = d.PendingTTL
	}
	if c.MaxPending == 0 {
		c.MaxPending = d.MaxPending
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = d.IdempotencyTTL
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks the fields (zero values mean defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Service == "":
		return errors.New("hooks: Service is required")
	case len(c.Service) > 253:
		return fmt.Errorf("hooks: Service is %d bytes, at most 253", len(c.Service))
	case c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 64<<20:
		return fmt.Errorf("hooks: MaxBodyBytes %d out of range [1024, 67108864]", c.MaxBodyBytes)
	case c.PendingTTL < time.Second || c.PendingTTL > 24*time.Hour:
		return fmt.Errorf("hooks: PendingTTL %s out of range [1s, 24h]", c.PendingTTL)
	case c.IdempotencyTTL < time.Second || c.IdempotencyTTL > 24*time.Hour:
		return fmt.Errorf("hooks: IdempotencyTTL %s out of range [1s, 24h]", c.IdempotencyTTL)
	case c.MaxPending < 1 || c.MaxPending > 10_000_000:
		return fmt.Errorf("hooks: MaxPending %d out of range [1, 10000000]", c.MaxPending)
	}
	return nil
}
