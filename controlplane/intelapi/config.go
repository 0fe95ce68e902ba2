package intelapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"github.com/omninode/bridge/controlplane/analyze"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// Cache memoizes list results. Family groups keys that expire alike.
type Cache interface {
	GetOrLoad(ctx context.Context, family string, key string, load func(context.Context) ([]byte, error)) ([]byte, error)
}

// LoopReader is the optimizer's read side: recommendations and the sidecars'
// sync state.
type LoopReader interface {
	ListRecommendations(ctx context.Context, req *bridgev1.ListRecommendationsRequest) (*bridgev1.ListRecommendationsResponse, error)
	GetRecommendation(ctx context.Context, id string) (*bridgev1.Recommendation, error)
	GetStatus(ctx context.Context, service string) (*bridgev1.GetStatusResponse, error)
}

// Config configures a Server.
type Config struct {
	// Analyzer answers the intelligence queries. Required.
	Analyzer *analyze.Analyzer
	// Loop answers recommendation and status queries; nil makes them
	// answer Unavailable.
	Loop LoopReader
	// Cache memoizes list results; nil disables caching.
	Cache Cache
	// Log receives errors the API hides from callers. Default discards.
	Log *slog.Logger
	// Registry receives the tap metrics. Default: a private registry.
	Registry *prometheus.Registry
	// TapBuffer is each tap subscriber's buffer, in events; a slower client
	// loses events and is told how many. Default 256.
	TapBuffer int
	// MaxTapStreams bounds concurrent tap streams. Default 64.
	MaxTapStreams int
	// HandlerOptions are passed to the Connect handler (interceptors such
	// as authentication).
	HandlerOptions []connect.HandlerOption
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{TapBuffer: 256, MaxTapStreams: 64} }

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Analyzer == nil {
		return errors.New("config: Analyzer is required")
	}
	if c.TapBuffer < 1 || c.TapBuffer > 1<<20 {
		return fmt.Errorf("config: TapBuffer %d out of range [1, 1048576]", c.TapBuffer)
	}
	if c.MaxTapStreams < 1 {
		return fmt.Errorf("config: MaxTapStreams %d must be >= 1", c.MaxTapStreams)
	}
	return nil
}
