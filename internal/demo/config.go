package demo

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// Config configures one demo service.
type Config struct {
	// Listen is the address Run listens on, such as "127.0.0.1:0". Not used by Serve.
	Listen string
	// Deps maps a dependency's name ("orders", "inventory", "payments",
	// "catalog") to the base URL the service calls it at: the dependency's
	// sidecar, or the dependency itself when no sidecar is inserted.
	Deps map[string]string
	// HooksURL is the base URL of the service's own sidecar hook receiver; the
	// service POSTs {HooksURL}/v1/hooks/execution after each operation. Empty
	// disables hooks.
	HooksURL string
	// Version is the version the service reports (X-Service-Version); default "v1".
	Version string
	// Faults holds the runtime fault knobs; nil means no faults.
	Faults *Faults
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Metrics counts requests (bad input included); nil counts nothing.
	Metrics *Metrics
	// CallTimeout bounds each call to a dependency; default 5s.
	CallTimeout time.Duration
}

// DefaultConfig returns a config listening on a free loopback port.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:0", Version: "v1", CallTimeout: 5 * time.Second}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	for name, u := range c.Deps {
		if err := checkBaseURL(u); err != nil {
			return fmt.Errorf("deps[%q]: %w", name, err)
		}
	}
	if c.HooksURL != "" {
		if err := checkBaseURL(c.HooksURL); err != nil {
			return fmt.Errorf("hooks url: %w", err)
		}
	}
	if c.CallTimeout < 0 {
		return fmt.Errorf("call timeout %s: must be at least 0", c.CallTimeout)
	}
	return nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("parse %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q: want an http(s) URL with a host", s)
	}
	return nil
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = "v1"
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.Faults == nil {
		c.Faults = &Faults{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	return c
}

// errMissingDep is returned when a service is built without a dependency it needs.
var errMissingDep = errors.New("missing dependency")

func (c Config) dep(name string) (string, error) {
	u, ok := c.Deps[name]
	if !ok || u == "" {
		return "", fmt.Errorf("%w %q", errMissingDep, name)
	}
	return u, nil
}
