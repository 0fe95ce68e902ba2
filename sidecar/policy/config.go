package policy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Engine.
type Config struct {
	// Service is the service the sidecar fronts; snapshots for another
	// service are rejected. Empty accepts any (tests).
	Service string
	// Endpoints are the upstream URLs the sidecar was configured with, the
	// first being the default. Traffic-weight directives may only name these.
	Endpoints []string
	// Defaults are the static directives in force when no directive of the
	// same kind and scope is (or when one expires). Their expires_at and
	// mode are ignored: they are always enforced. Optional.
	Defaults []*bridgev1.Directive
	// OnSignal, when set, receives critical signals the policies detect (a
	// breaker opening, a burst of timeouts). It is called on the request
	// path and must not block (directives.Client.SendSignal does not).
	OnSignal func(*bridgev1.CriticalSignal)
	// ErrorBurst configures error-burst detection, which runs whether or
	// not directives are in force. Zero fields take the defaults.
	ErrorBurst ErrorBurstConfig
	// Registry receives the engine's metrics; nil disables them.
	Registry prometheus.Registerer
	// Logger logs snapshot changes; nil discards.
	Logger *slog.Logger
}

// ErrorBurstConfig configures the detection of error bursts: per route, a
// rolling window of request outcomes at the upstream (5xx, transport errors,
// gRPC/Connect server-side error codes in the response headers, timeouts of
// an enforced timeout directive); when failures reach Threshold of at least
// MinRequests requests in the window, a SIGNAL_KIND_ERROR_BURST goes to
// Config.OnSignal (at most one per route per second).
type ErrorBurstConfig struct {
	// Disabled turns detection off.
	Disabled bool
	// Window is the span of the rolling window, counted in ten buckets;
	// default 10s, at least 10ms.
	Window time.Duration
	// Threshold is the failure share (0 < t <= 1) that makes a burst;
	// default 0.5.
	Threshold float64
	// MinRequests is the least requests in the window for a burst; default 20.
	MinRequests int
}

// Default error-burst settings.
const (
	DefaultBurstWindow      = 10 * time.Second
	DefaultBurstThreshold   = 0.5
	DefaultBurstMinRequests = 20
)

func (b ErrorBurstConfig) withDefaults() ErrorBurstConfig {
	if b.Window == 0 {
		b.Window = DefaultBurstWindow
	}
	if b.Threshold == 0 {
		b.Threshold = DefaultBurstThreshold
	}
	if b.MinRequests == 0 {
		b.MinRequests = DefaultBurstMinRequests
	}
	return b
}

// DefaultConfig returns a Config with no endpoints and no defaults, and
// error-burst detection at its defaults.
func DefaultConfig() Config {
	return Config{ErrorBurst: ErrorBurstConfig{Window: DefaultBurstWindow, Threshold: DefaultBurstThreshold, MinRequests: DefaultBurstMinRequests}}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if b := c.ErrorBurst.withDefaults(); !b.Disabled {
		if b.Window < 10*time.Millisecond {
			return fmt.Errorf("error_burst.window: %v, want at least 10ms", b.Window)
		}
		if b.Threshold < 0 || b.Threshold > 1 {
			return fmt.Errorf("error_burst.threshold: %v, want within (0, 1]", b.Threshold)
		}
		if b.MinRequests < 1 || b.MinRequests > burstCountMask {
			return fmt.Errorf("error_burst.min_requests: %d, want 1 to %d", b.MinRequests, burstCountMask)
		}
	}
	for i, e := range c.Endpoints {
		u, err := url.Parse(e)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("endpoints[%d] %q: want an absolute URL such as http://127.0.0.1:8081", i, e)
		}
	}
	for i, d := range c.Defaults {
		if err := validateDirective(d, c.Service, c.Endpoints, false); err != nil {
			return fmt.Errorf("defaults[%d]: %w", i, err)
		}
	}
	return nil
}

// ErrStaleVersion is returned by Apply for a snapshot older than the one in force.
var ErrStaleVersion = errors.New("snapshot version older than the one in force")
