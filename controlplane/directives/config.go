package directives

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server.
type Config struct {
	// KV persists desired state, overrides, canaries and sidecar status. Required.
	KV KV
	// OnSignal receives each critical signal once (de-duplicated by event
	// id). It runs on the stream's goroutine and should not block long.
	OnSignal func(ctx context.Context, service string, sig *bridgev1.CriticalSignal)
	// Heartbeat is how often an idle stream gets a heartbeat; default 15s.
	Heartbeat time.Duration
	// Poll is how often the KV store is read for changes made by other
	// replicas or by operators; default 1s.
	Poll time.Duration
	// StatusFlush is how often changed sidecar status is written to the KV
	// store; default 1s.
	StatusFlush time.Duration
	// StaleAfter marks a disconnected sidecar's status for removal from
	// GetStatus after this long unseen; default 10m.
	StaleAfter time.Duration
	// SeenEvents is the size of the event-id de-duplication cache; default 65,536.
	SeenEvents int
	// OverrideTTL is the expiry given to an operator override that has none; default 24h.
	OverrideTTL time.Duration
	// PriorityLead is how much earlier a directive published in reaction to
	// a sidecar's signal (OnSignal's context passed to Publish) reaches that
	// sidecar than the service's other sidecars; default 2ms, 0 disables.
	PriorityLead time.Duration
	// Registry receives the metrics; nil disables them.
	Registry prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults (KV still to be set).
func DefaultConfig() Config {
	return Config{Heartbeat: 15 * time.Second, Poll: time.Second, StatusFlush: time.Second, StaleAfter: 10 * time.Minute, SeenEvents: 65536, OverrideTTL: 24 * time.Hour, PriorityLead: 2 * time.Millisecond}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.KV == nil {
		errs = append(errs, errors.New("kv: required"))
	}
	for name, d := range map[string]time.Duration{"heartbeat": c.Heartbeat, "poll": c.Poll, "status_flush": c.StatusFlush, "stale_after": c.StaleAfter, "override_ttl": c.OverrideTTL} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v must be positive", name, d))
		}
	}
	if c.SeenEvents < 1 {
		errs = append(errs, fmt.Errorf("seen_events: %d must be at least 1", c.SeenEvents))
	}
	return errors.Join(errs...)
}
