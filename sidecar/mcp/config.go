package mcp

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink receives the events the capture builds. Emit must not block.
type Sink interface {
	Emit(bus.Event)
}

// DefaultMaxCaptureBytes is the default cap on one captured message.
const DefaultMaxCaptureBytes = 4 << 20

// Config configures a Capture.
type Config struct {
	// Service is the name of the MCP server's service (--service); it is the
	// tools' service_source and the executions' service_name. Required.
	Service string
	// MaxCaptureBytes caps one captured JSON body or event-stream message;
	// bigger ones pass through uncaptured (counted). Default 4 MiB; allowed
	// 1 KiB to 64 MiB.
	MaxCaptureBytes int64
	// Registry receives the omnibridge_mcp_* metrics. Nil means a private
	// registry (never the global default).
	Registry *prometheus.Registry
	// Logger logs capture problems (never payloads). Nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults for service.
func DefaultConfig(service string) Config {
	return Config{Service: service, MaxCaptureBytes: DefaultMaxCaptureBytes}
}

func (c Config) withDefaults() Config {
	if c.MaxCaptureBytes == 0 {
		c.MaxCaptureBytes = DefaultMaxCaptureBytes
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks the fields (zero values mean defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Service == "":
		return errors.New("mcp: Service is required")
	case len(c.Service) > 253:
		return fmt.Errorf("mcp: Service is %d bytes, at most 253", len(c.Service))
	case c.MaxCaptureBytes < 1<<10 || c.MaxCaptureBytes > 64<<20:
		return fmt.Errorf("mcp: MaxCaptureBytes %d out of range [1024, 67108864]", c.MaxCaptureBytes)
	}
	return nil
}
