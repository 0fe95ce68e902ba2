package store

import (
	"context"
	"time"

	"github.com/omninode/bridge/internal/bus"
)

// Store is what the control plane needs from its durable state, met by [PG]
// and [Mem].
type Store interface {
	// WriteEvents stores a batch idempotently and returns the ids of the
	// events it newly inserted: an event stored before (a replay) is absent,
	// so that the analysis never counts it twice. Events older than the
	// retention are not stored. When it returns an error nothing of the
	// batch may be assumed stored; calling again with the same batch is safe.
	WriteEvents(ctx context.Context, evs []bus.Event) (inserted map[string]bool, err error)
	// Replay calls fn with every stored event that occurred at or after
	// since, in time order, and stops at fn's first error.
	Replay(ctx context.Context, since time.Time, fn func(bus.Event) error) error
	// OperationStats aggregates the stored executions of one operation.
	OperationStats(ctx context.Context, service, operation string) (OpStats, error)
	// Maintain creates the coming days' partitions and applies retention once.
	Maintain(ctx context.Context) error
	// Run calls Maintain every MaintainInterval until ctx ends.
	Run(ctx context.Context) error
	// Close releases the store's resources.
	Close()
}

// OpStats is the stored summary of one operation's executions (the
// perf:{service}:{operation} cached view).
type OpStats struct {
	Service   string  `json:"service"`
	Operation string  `json:"operation"`
	Count     int64   `json:"count"`
	Failures  int64   `json:"failures"`
	AvgMs     float64 `json:"avg_ms"`
	MaxMs     int64   `json:"max_ms"`
}

// dayStart truncates t to its UTC day.
func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// runMaintenance calls maintain now and every interval until ctx ends.
func runMaintenance(ctx context.Context, cfg Config, maintain func(context.Context) error) error {
	t := time.NewTicker(cfg.MaintainInterval)
	defer t.Stop()
	for {
		if err := maintain(ctx); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("store maintenance failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
