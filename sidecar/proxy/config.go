package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Sink takes events without blocking (the emitter).
type Sink interface{ Emit(bus.Event) }

// Redactor cleans what goes into an event (sidecar/redact).
type Redactor interface {
	Headers(h http.Header, allow []string) map[string]string
	URL(u *url.URL) string
	String(s string) string
}

// Config configures a Proxy.
type Config struct {
	// Service is the name of the service behind the sidecar (target_service). Required.
	Service string
	// Upstream is the service's base URL, http or https. Required.
	Upstream *url.URL
	// Source stamps event envelopes. Required when Sink is set.
	Source *bus.Source
	// Sink receives one communication event per request; nil emits nothing.
	Sink Sink
	// Redactor cleans headers, paths and strings for events. Required when Sink is set.
	Redactor Redactor
	// Policy is the request-path policy engine; nil is the zero Engine (pass-through).
	Policy *policy.Engine
	// Middleware wraps the forwarding handler inside the policy (MCP capture); optional.
	Middleware func(http.Handler) http.Handler
	// MCP marks JSON POSTs as MCP traffic in events (protocol PROTOCOL_MCP).
	MCP bool
	// Routes are route templates tried before the heuristic ("/orders/{id}").
	Routes []string
	// HeaderAllow lists the request headers copied (redacted) into events;
	// default DefaultHeaderAllow.
	HeaderAllow []string
	// UserHeaders name the request headers that carry the caller identity
	// (a subject or client id, never a credential), first non-empty wins;
	// default x-user-id, x-client-id.
	UserHeaders []string
	// PreserveHost keeps the client's Host header towards the upstream
	// (transparent proxying); false sends the upstream's host. Default true.
	PreserveHost bool
	// DialTimeout bounds connecting to the upstream; default 5s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers; 0 (default) waits as long as the client does (streams).
	ResponseHeaderTimeout time.Duration
	// MaxIdleConns is the idle upstream connections kept; default 256.
	MaxIdleConns int
	// TracerProvider makes the server and client spans; nil makes spans
	// with ids (for events and propagation) that are never exported.
	TracerProvider trace.TracerProvider
	// Registry receives the request metrics; nil registers none.
	Registry *prometheus.Registry
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultHeaderAllow are the request headers events keep by default.
var DefaultHeaderAllow = []string{
	"accept", "content-type", "content-length", "user-agent", "x-request-id", "x-correlation-id",
	"connect-protocol-version", "connect-timeout-ms", "grpc-timeout", "mcp-session-id", "mcp-protocol-version",
}

// DefaultConfig returns the defaults (Service and Upstream still to be set).
func DefaultConfig() Config {
	return Config{
		HeaderAllow:  DefaultHeaderAllow,
		UserHeaders:  []string{"x-user-id", "x-client-id"},
		PreserveHost: true,
		DialTimeout:  5 * time.Second,
		MaxIdleConns: 256,
	}
}

// Validate checks the configuration and names the bad field.
func (c Config) Validate() error {
	if c.Service == "" {
		return errors.New("proxy: service name is required")
	}
	if c.Upstream == nil || (c.Upstream.Scheme != "http" && c.Upstream.Scheme != "https") || c.Upstream.Host == "" {
		return errors.New("proxy: upstream must be an http:// or https:// URL with a host")
	}
	if c.Sink != nil && (c.Source == nil || c.Redactor == nil) {
		return errors.New("proxy: a sink needs a source and a redactor")
	}
	if c.DialTimeout <= 0 {
		return fmt.Errorf("proxy: dial timeout %v must be positive", c.DialTimeout)
	}
	if c.ResponseHeaderTimeout < 0 || c.MaxIdleConns < 0 {
		return errors.New("proxy: response header timeout and max idle conns must not be negative")
	}
	return nil
}
