package policy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"

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
	// Registry receives the engine's metrics; nil disables them.
	Registry prometheus.Registerer
	// Logger logs snapshot changes; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with no endpoints and no defaults.
func DefaultConfig() Config { return Config{} }

// Validate checks the configuration.
func (c Config) Validate() error {
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
