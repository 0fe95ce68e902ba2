package check

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/omninode/bridge/internal/bus"
)

// Config says what to check. An empty address skips its checks.
type Config struct {
	// Bus reaches the brokers; empty Brokers skips the bus checks.
	Bus bus.Config
	// Postgres is a PostgreSQL DSN (URL or key=value).
	Postgres string
	// Redis is host:port or a redis:// URL.
	Redis string
	// Consul is the Consul HTTP address, host:port or a URL.
	Consul string
	// Server is the control plane URL, for the sidecars' sync status.
	Server string
	// Token is a bearer token for Server; optional.
	Token string
	// MigrationsTable is where the control plane records applied
	// migrations. Default "schema_migrations".
	MigrationsTable string
	// Timeout bounds each check (1 ms to 5 min). Default 5s.
	Timeout time.Duration
	// HTTPClient calls Server and Consul; default a plain client.
	HTTPClient *http.Client
}

// DefaultConfig returns the defaults documented on [Config], with nothing to check.
func DefaultConfig() Config {
	return Config{MigrationsTable: "schema_migrations", Timeout: 5 * time.Second}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if len(c.Bus.Brokers) > 0 {
		if err := c.Bus.Validate(); err != nil {
			return fmt.Errorf("check config: %w", err)
		}
	}
	if c.Server != "" && !strings.HasPrefix(c.Server, "http://") && !strings.HasPrefix(c.Server, "https://") {
		return fmt.Errorf("check config: server %q is not an http:// or https:// URL", c.Server)
	}
	if c.MigrationsTable == "" {
		return errors.New("check config: migrations table must not be empty")
	}
	if c.Timeout < time.Millisecond || c.Timeout > 5*time.Minute {
		return fmt.Errorf("check config: timeout %v is outside 1ms to 5m", c.Timeout)
	}
	return nil
}
