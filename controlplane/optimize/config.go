package optimize

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// Publisher sends a service's directive set to its sidecars
// (controlplane/directives.Server implements it).
type Publisher interface {
	// Publish makes ds the service's directive set under a new version,
	// to a canary share of sidecars first when canary is in (0, 1).
	Publish(ctx context.Context, service string, ds []*bridgev1.Directive, canary float64) (uint64, error)
	// Promote ends a canary: every sidecar gets the latest version.
	Promote(ctx context.Context, service string) error
}

// ModeSource reads operator mode overrides kept in the KV store (Consul),
// under ModePrefix + "<service>/<kind>" with values "recommend", "dry_run"
// or "enforce". controlplane/kv implements it.
type ModeSource interface {
	List(ctx context.Context, prefix string) (map[string][]byte, error)
}

// ModePrefix is where mode overrides live in the KV store.
const ModePrefix = "omnibridge/optimize/modes/"

// Guardrail bounds one kind of change.
type Guardrail struct {
	// MaxStep is the largest relative change of a numeric setting per
	// change: 1 lets a timeout double or halve at most.
	MaxStep float64
	// Cooldown is the least time between two changes of the same kind on
	// the same route.
	Cooldown time.Duration
	// DefaultMode is the mode when no operator set one.
	DefaultMode bridgev1.DirectiveMode
}

// Config configures an Engine.
type Config struct {
	// Stats gives route statistics. Required.
	Stats StatsReader
	// Publisher sends directives to sidecars. Required.
	Publisher Publisher
	// Store keeps recommendations, audit and modes; default an in-memory store.
	Store Store
	// Modes, when set, holds operator mode overrides in the KV store; they
	// win over modes set through the API.
	Modes ModeSource
	// Interval between evaluation passes; default 30s.
	Interval time.Duration
	// Window of the statistics a proposal is based on; default 5m.
	Window time.Duration
	// MeasureAfter is how long a directive is enforced before its effect is
	// measured, over a window of the same length; default 5m.
	MeasureAfter time.Duration
	// MinRequests is the least requests in a window for it to count as
	// evidence (for a proposal and for a measurement); default 200.
	MinRequests uint64
	// DirectiveTTL is the life of a published directive; the engine renews
	// directives in force before they expire, so a lost control plane
	// leaves them to expire at most this long after; default 1h.
	DirectiveTTL time.Duration
	// RollbackBelow is the effectiveness score under which an enforced
	// directive is rolled back automatically; default -0.1.
	RollbackBelow float64
	// TimeoutMargin multiplies the observed p99.9 to make a timeout;
	// default 1.5. TimeoutFloor and TimeoutCeiling bound it; defaults 50ms, 30s.
	TimeoutMargin                float64
	TimeoutFloor, TimeoutCeiling time.Duration
	// Guardrails per kind; DefaultGuardrails fills the missing ones.
	Guardrails map[bridgev1.DirectiveKind]Guardrail
	// Registry receives the metrics; nil disables them.
	Registry prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultGuardrails are the guardrails and default modes per kind: changes
// that alter behaviour a person would notice start as recommendations;
// protective limits start in dry-run; sampling, which never touches
// traffic, is enforced.
func DefaultGuardrails() map[bridgev1.DirectiveKind]Guardrail {
	const (
		rec = bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND
		dry = bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN
		enf = bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE
	)
	return map[bridgev1.DirectiveKind]Guardrail{
		bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT:           {MaxStep: 1, Cooldown: 5 * time.Minute, DefaultMode: rec},
		bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY:             {MaxStep: 1, Cooldown: 5 * time.Minute, DefaultMode: rec},
		bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER:   {MaxStep: 1, Cooldown: 5 * time.Minute, DefaultMode: dry},
		bridgev1.DirectiveKind_DIRECTIVE_KIND_RATE_LIMIT:        {MaxStep: 0.5, Cooldown: 10 * time.Minute, DefaultMode: dry},
		bridgev1.DirectiveKind_DIRECTIVE_KIND_CONCURRENCY_LIMIT: {MaxStep: 0.5, Cooldown: 10 * time.Minute, DefaultMode: dry},
		bridgev1.DirectiveKind_DIRECTIVE_KIND_RESPONSE_CACHE:    {MaxStep: 1, Cooldown: 10 * time.Minute, DefaultMode: rec},
		bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS:   {MaxStep: 0.5, Cooldown: time.Minute, DefaultMode: rec},
		bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING:    {MaxStep: 1, Cooldown: 10 * time.Minute, DefaultMode: enf},
	}
}

// DefaultConfig returns the defaults (Stats and Publisher still to be set).
func DefaultConfig() Config {
	return Config{
		Interval: 30 * time.Second, Window: 5 * time.Minute, MeasureAfter: 5 * time.Minute, MinRequests: 200,
		DirectiveTTL: time.Hour, RollbackBelow: -0.1, TimeoutMargin: 1.5, TimeoutFloor: 50 * time.Millisecond,
		TimeoutCeiling: 30 * time.Second, Guardrails: DefaultGuardrails(),
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Stats == nil {
		errs = append(errs, errors.New("stats: required"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("publisher: required"))
	}
	for name, d := range map[string]time.Duration{"interval": c.Interval, "window": c.Window, "measure_after": c.MeasureAfter, "directive_ttl": c.DirectiveTTL} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v must be positive", name, d))
		}
	}
	if c.RollbackBelow < -1 || c.RollbackBelow > 0 {
		errs = append(errs, fmt.Errorf("rollback_below: %v outside -1 to 0", c.RollbackBelow))
	}
	if c.TimeoutMargin < 1 {
		errs = append(errs, fmt.Errorf("timeout_margin: %v must be at least 1", c.TimeoutMargin))
	}
	if c.TimeoutFloor < time.Millisecond || c.TimeoutCeiling > 5*time.Minute || c.TimeoutFloor > c.TimeoutCeiling {
		errs = append(errs, fmt.Errorf("timeout_floor/ceiling: %v/%v must lie within 1ms to 5m, floor <= ceiling", c.TimeoutFloor, c.TimeoutCeiling))
	}
	for k, g := range c.Guardrails {
		if g.MaxStep <= 0 || g.Cooldown < 0 {
			errs = append(errs, fmt.Errorf("guardrails[%s]: max_step %v must be positive and cooldown %v not negative", k, g.MaxStep, g.Cooldown))
		}
	}
	return errors.Join(errs...)
}
