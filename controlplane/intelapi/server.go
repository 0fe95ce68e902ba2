package intelapi

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// Server implements the IntelligenceService.
type Server struct {
	cfg Config
	log *slog.Logger
	tap *hub
}

var _ bridgev1connect.IntelligenceServiceHandler = (*Server)(nil)

// New builds a Server.
func New(cfg Config) (*Server, error) {
	d := DefaultConfig()
	if cfg.TapBuffer == 0 {
		cfg.TapBuffer = d.TapBuffer
	}
	if cfg.MaxTapStreams == 0 {
		cfg.MaxTapStreams = d.MaxTapStreams
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	h, err := newHub(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Log, tap: h}, nil
}

// Handler returns the path and handler of the IntelligenceService.
func (s *Server) Handler() (string, http.Handler) {
	return bridgev1connect.NewIntelligenceServiceHandler(s, s.cfg.HandlerOptions...)
}

// cached answers a list call through the cache: the key is the request's
// deterministic encoding.
func cached[Req, Resp proto.Message](ctx context.Context, s *Server, family string, req Req, newResp func() Resp, load func() (Resp, error)) (Resp, error) {
	if s.cfg.Cache == nil {
		return load()
	}
	var zero Resp
	k, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return zero, fmt.Errorf("encode cache key: %w", err)
	}
	b, err := s.cfg.Cache.GetOrLoad(ctx, family, hex.EncodeToString(k), func(context.Context) ([]byte, error) {
		r, err := load()
		if err != nil {
			return nil, err
		}
		return proto.Marshal(r)
	})
	if err != nil {
		return zero, err
	}
	out := newResp()
	if err := proto.Unmarshal(b, out); err != nil {
		return zero, fmt.Errorf("decode cached %s: %w", family, err)
	}
	return out, nil
}

// ListServices implements the IntelligenceService.
func (s *Server) ListServices(ctx context.Context, req *connect.Request[bridgev1.ListServicesRequest]) (*connect.Response[bridgev1.ListServicesResponse], error) {
	out, err := cached(ctx, s, "intel.services", req.Msg, func() *bridgev1.ListServicesResponse { return &bridgev1.ListServicesResponse{} },
		func() (*bridgev1.ListServicesResponse, error) {
			return &bridgev1.ListServicesResponse{Services: s.cfg.Analyzer.Services()}, nil
		})
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}

// GetServiceGraph implements the IntelligenceService.
func (s *Server) GetServiceGraph(ctx context.Context, req *connect.Request[bridgev1.GetServiceGraphRequest]) (*connect.Response[bridgev1.GetServiceGraphResponse], error) {
	out, err := cached(ctx, s, "intel.graph", req.Msg, func() *bridgev1.GetServiceGraphResponse { return &bridgev1.GetServiceGraphResponse{} },
		func() (*bridgev1.GetServiceGraphResponse, error) {
			return s.cfg.Analyzer.Graph(req.Msg.GetWindow()), nil
		})
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}

// ListRouteStats implements the IntelligenceService.
func (s *Server) ListRouteStats(ctx context.Context, req *connect.Request[bridgev1.ListRouteStatsRequest]) (*connect.Response[bridgev1.ListRouteStatsResponse], error) {
	out, err := cached(ctx, s, "intel.routes", req.Msg, func() *bridgev1.ListRouteStatsResponse { return &bridgev1.ListRouteStatsResponse{} },
		func() (*bridgev1.ListRouteStatsResponse, error) {
			return &bridgev1.ListRouteStatsResponse{Routes: s.cfg.Analyzer.RouteStats(req.Msg.GetService(), req.Msg.GetWindow(), int(req.Msg.GetLimit()))}, nil
		})
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}

// ListPatterns implements the IntelligenceService.
func (s *Server) ListPatterns(ctx context.Context, req *connect.Request[bridgev1.ListPatternsRequest]) (*connect.Response[bridgev1.ListPatternsResponse], error) {
	out, err := cached(ctx, s, "intel.patterns", req.Msg, func() *bridgev1.ListPatternsResponse { return &bridgev1.ListPatternsResponse{} },
		func() (*bridgev1.ListPatternsResponse, error) {
			return &bridgev1.ListPatternsResponse{Patterns: s.cfg.Analyzer.Patterns(req.Msg.GetService(), int(req.Msg.GetLimit()))}, nil
		})
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}

// GetTrace implements the IntelligenceService. Traces change while they
// assemble, so they are not cached.
func (s *Server) GetTrace(_ context.Context, req *connect.Request[bridgev1.GetTraceRequest]) (*connect.Response[bridgev1.GetTraceResponse], error) {
	out, err := s.cfg.Analyzer.Trace(req.Msg.GetId())
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}

// ListTools implements the IntelligenceService.
func (s *Server) ListTools(ctx context.Context, req *connect.Request[bridgev1.ListToolsRequest]) (*connect.Response[bridgev1.ListToolsResponse], error) {
	out, err := cached(ctx, s, "intel.tools", req.Msg, func() *bridgev1.ListToolsResponse { return &bridgev1.ListToolsResponse{} },
		func() (*bridgev1.ListToolsResponse, error) {
			return &bridgev1.ListToolsResponse{Tools: s.cfg.Analyzer.Tools(req.Msg.GetService())}, nil
		})
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}

// ListJourneys implements the IntelligenceService.
func (s *Server) ListJourneys(ctx context.Context, req *connect.Request[bridgev1.ListJourneysRequest]) (*connect.Response[bridgev1.ListJourneysResponse], error) {
	out, err := cached(ctx, s, "intel.journeys", req.Msg, func() *bridgev1.ListJourneysResponse { return &bridgev1.ListJourneysResponse{} },
		func() (*bridgev1.ListJourneysResponse, error) {
			return s.cfg.Analyzer.Journeys(int(req.Msg.GetLimit())), nil
		})
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}

// ListRecommendations implements the IntelligenceService from the optimizer.
func (s *Server) ListRecommendations(ctx context.Context, req *connect.Request[bridgev1.ListRecommendationsRequest]) (*connect.Response[bridgev1.ListRecommendationsResponse], error) {
	if s.cfg.Loop == nil {
		return nil, s.toConnect(req.Spec().Procedure, errUnavailable)
	}
	out, err := s.cfg.Loop.ListRecommendations(ctx, req.Msg)
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}

// GetRecommendation implements the IntelligenceService from the optimizer.
func (s *Server) GetRecommendation(ctx context.Context, req *connect.Request[bridgev1.GetRecommendationRequest]) (*connect.Response[bridgev1.GetRecommendationResponse], error) {
	if s.cfg.Loop == nil {
		return nil, s.toConnect(req.Spec().Procedure, errUnavailable)
	}
	if req.Msg.GetId() == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("id is required"))
	}
	out, err := s.cfg.Loop.GetRecommendation(ctx, req.Msg.GetId())
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(&bridgev1.GetRecommendationResponse{Recommendation: out}), nil
}

// GetStatus implements the IntelligenceService from the optimizer.
func (s *Server) GetStatus(ctx context.Context, req *connect.Request[bridgev1.GetStatusRequest]) (*connect.Response[bridgev1.GetStatusResponse], error) {
	if s.cfg.Loop == nil {
		return nil, s.toConnect(req.Spec().Procedure, errUnavailable)
	}
	out, err := s.cfg.Loop.GetStatus(ctx, req.Msg.GetService())
	if err != nil {
		return nil, s.toConnect(req.Spec().Procedure, err)
	}
	return connect.NewResponse(out), nil
}
