package store

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a store. DSN selects PostgreSQL; the embedded store
// ignores it.
type Config struct {
	// DSN is the PostgreSQL connection string (URL or key=value). Required by OpenPG.
	DSN string
	// MaxConns bounds the connection pool; default 8.
	MaxConns int32
	// Retention is how long detailed events are kept; whole day partitions
	// older than this are dropped. Default 90 days (the original design).
	Retention time.Duration
	// PatternRetention is how long intelligence patterns not seen again are
	// kept. Default 365 days.
	PatternRetention time.Duration
	// PartitionsAhead is how many future days of partitions maintenance
	// creates ahead of time; default 3. Writes create missing days on demand too.
	PartitionsAhead int
	// MaintainInterval is how often Run creates partitions and applies
	// retention; default 1h.
	MaintainInterval time.Duration
	// Now is the clock for partitioning and retention; default time.Now.
	Now func() time.Time
	// Registry receives the store's metrics; nil registers nowhere.
	Registry *prometheus.Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults described on each field.
func DefaultConfig() Config {
	return Config{
		MaxConns:         8,
		Retention:        90 * 24 * time.Hour,
		PatternRetention: 365 * 24 * time.Hour,
		PartitionsAhead:  3,
		MaintainInterval: time.Hour,
		Now:              time.Now,
	}
}

// withDefaults fills zero fields with the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.Retention == 0 {
		c.Retention = d.Retention
	}
	if c.PatternRetention == 0 {
		c.PatternRetention = d.PatternRetention
	}
	if c.PartitionsAhead == 0 {
		c.PartitionsAhead = d.PartitionsAhead
	}
	if c.MaintainInterval == 0 {
		c.MaintainInterval = d.MaintainInterval
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the configuration (after defaults) and names the bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MaxConns < 1 || c.MaxConns > 1000 {
		return fmt.Errorf("store: max conns %d out of range 1..1000", c.MaxConns)
	}
	if c.Retention < 24*time.Hour {
		return fmt.Errorf("store: retention %s must be at least 24h", c.Retention)
	}
	if c.PatternRetention < 24*time.Hour {
		return fmt.Errorf("store: pattern retention %s must be at least 24h", c.PatternRetention)
	}
	if c.PartitionsAhead < 1 || c.PartitionsAhead > 60 {
		return fmt.Errorf("store: partitions ahead %d out of range 1..60", c.PartitionsAhead)
	}
	if c.MaintainInterval < time.Second {
		return errors.New("store: maintain interval must be at least 1s")
	}
	return nil
}
