package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/emit"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/omninode/bridge/sidecar/redact"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Component is a long-lived part the sidecar runs alongside its own (the
// directive client, for one).
type Component interface{ Run(context.Context) error }

// Config configures a Sidecar. DefaultConfig gives the defaults.
type Config struct {
	// Service is the name of the service behind the sidecar. Required.
	Service string
	// Version is the service's version (image tag, semver); may be empty.
	Version string
	// Instance identifies this sidecar in events; empty means the id kept in
	// StateDir (created on first start), so a restart keeps its identity.
	Instance string
	// Pod and Namespace are the Kubernetes pod and namespace, when known.
	Pod, Namespace string

	// Listen is the proxy's address; default ":15000".
	Listen string
	// Upstream is the service's URL, such as http://127.0.0.1:8080. Required.
	Upstream string
	// Admin serves /livez, /readyz, /metrics and /debug/state; default 127.0.0.1:15001.
	Admin string
	// Hooks serves the hook receiver; default 127.0.0.1:15002 (loopback: only the service reports).
	Hooks string
	// TLSCert and TLSKey, when both set, make the proxy listener TLS (HTTP/2 by ALPN).
	TLSCert, TLSKey string

	// Bus is how to reach the brokers; nil means spool only.
	Bus *bus.Config
	// Emit turns event emission on (default true); off, no events are built
	// (for benchmarks).
	Emit bool
	// SpoolDir holds the event spool. Required when Emit is on.
	SpoolDir string
	// Emitter tunes the emitter (queue, spool cap, timeouts); SpoolDir, Bus,
	// Registry and Logger are set from this Config.
	Emitter emit.Config
	// StateDir keeps the sequence high-water mark, the instance id and,
	// later, acknowledged directives; default SpoolDir.
	StateDir string
	// ControlPlane is the control plane's URL for directives; empty runs
	// without one. The directive client is passed in Components.
	ControlPlane string
	// MCP turns on MCP capture of the proxied traffic.
	MCP bool
	// Routes are route templates tried before the heuristic.
	Routes []string
	// Redact configures redaction; default redact.DefaultConfig().
	Redact redact.Config

	// HealthPath is probed on the upstream with GET (2xx/3xx is healthy);
	// empty means a TCP connect. HealthInterval defaults to 5s,
	// HealthTimeout to 2s.
	HealthPath     string
	HealthInterval time.Duration
	HealthTimeout  time.Duration

	// DrainTimeout bounds draining in-flight requests at shutdown; default 15s.
	DrainTimeout time.Duration
	// MaxHeaderBytes caps request headers (431 over it); default 64 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading request headers; default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle client connections; default 120s.
	IdleTimeout time.Duration
	// MaxHookBodyBytes caps a hook request body; default 1 MiB.
	MaxHookBodyBytes int64

	// Policy is the request-path policy engine; nil is the zero Engine.
	Policy *policy.Engine
	// TracerProvider makes spans; nil: spans with ids, never exported.
	TracerProvider trace.TracerProvider
	// Registry receives every metric; nil means a new registry.
	Registry *prometheus.Registry
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Components run alongside the sidecar's own parts and stop with it.
	Components []Component
}

// DefaultConfig returns the defaults; Service, Upstream and SpoolDir are
// still to be set.
func DefaultConfig() Config {
	return Config{
		Listen:            ":15000",
		Admin:             "127.0.0.1:15001",
		Hooks:             "127.0.0.1:15002",
		Emit:              true,
		Emitter:           emit.DefaultConfig(),
		Redact:            redact.DefaultConfig(),
		HealthInterval:    5 * time.Second,
		HealthTimeout:     2 * time.Second,
		DrainTimeout:      15 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHookBodyBytes:  1 << 20,
	}
}

// Validate checks the configuration and names the bad field.
func (c Config) Validate() error {
	if c.Service == "" || len(c.Service) > 253 {
		return errors.New("sidecar: service name is required (at most 253 bytes)")
	}
	u, err := url.Parse(c.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("sidecar: upstream %q must be an http:// or https:// URL", c.Upstream)
	}
	if c.Listen == "" || c.Admin == "" || c.Hooks == "" {
		return errors.New("sidecar: listen, admin and hooks addresses are required")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("sidecar: tls cert and key must be given together")
	}
	if c.Emit && c.SpoolDir == "" {
		return errors.New("sidecar: spool dir is required when emission is on")
	}
	if c.HealthInterval < 100*time.Millisecond || c.HealthTimeout <= 0 {
		return fmt.Errorf("sidecar: health interval %v must be at least 100ms and the timeout positive", c.HealthInterval)
	}
	if c.DrainTimeout < 0 {
		return fmt.Errorf("sidecar: drain timeout %v must not be negative", c.DrainTimeout)
	}
	if c.MaxHeaderBytes < 1<<10 || c.MaxHeaderBytes > 16<<20 {
		return fmt.Errorf("sidecar: max header bytes %d out of range 1KiB..16MiB", c.MaxHeaderBytes)
	}
	if c.ReadHeaderTimeout <= 0 || c.IdleTimeout <= 0 {
		return errors.New("sidecar: read header and idle timeouts must be positive")
	}
	if c.ControlPlane != "" {
		if u, err := url.Parse(c.ControlPlane); err != nil || u.Host == "" {
			return fmt.Errorf("sidecar: control plane %q is not a URL", c.ControlPlane)
		}
	}
	return nil
}
