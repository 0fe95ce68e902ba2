package adminapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
)

// StatusSource gives the sidecars' sync state (controlplane/directives.Server).
type StatusSource interface {
	Status(ctx context.Context, service string) ([]*bridgev1.SidecarStatus, map[string]uint64, error)
}

// Config configures a Handler.
type Config struct {
	// Engine is the optimization engine. Required.
	Engine *optimize.Engine
	// Status gives the sidecars' sync state; nil makes GetStatus unavailable.
	Status StatusSource
	// Logger; nil discards.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Engine == nil {
		return errors.New("engine: required")
	}
	return nil
}

// Handler implements AdminService and the intelligence API's LoopReader.
type Handler struct {
	cfg Config
	log *slog.Logger
}

var _ bridgev1connect.AdminServiceHandler = (*Handler)(nil)

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate adminapi config: %w", err)
	}
	h := &Handler{cfg: cfg, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Mount returns the path and HTTP handler of AdminService (Connect, gRPC, gRPC-Web).
func (h *Handler) Mount(opts ...connect.HandlerOption) (string, http.Handler) {
	return bridgev1connect.NewAdminServiceHandler(h, opts...)
}

// toConnect maps the optimizer's errors to Connect codes; anything else is
// logged and reaches the caller as "internal error".
func (h *Handler) toConnect(op string, err error) error {
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, optimize.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, optimize.ErrInvalidState):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, optimize.ErrInvalidArgument):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	h.log.Error("admin api error", "op", op, "err", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

func required(field, v string) error {
	if v == "" {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s is required", field))
	}
	return nil
}

// ApplyRecommendation implements AdminService.
func (h *Handler) ApplyRecommendation(ctx context.Context, req *connect.Request[bridgev1.ApplyRecommendationRequest]) (*connect.Response[bridgev1.ApplyRecommendationResponse], error) {
	if err := required("id", req.Msg.GetId()); err != nil {
		return nil, err
	}
	rec, v, err := h.cfg.Engine.Apply(ctx, req.Msg.GetId(), req.Msg.GetMode(), req.Msg.GetCanaryFraction(), Actor(ctx), req.Msg.GetReason())
	if err != nil {
		return nil, h.toConnect("apply", err)
	}
	return connect.NewResponse(&bridgev1.ApplyRecommendationResponse{Recommendation: rec.Rec, Version: v}), nil
}

// RejectRecommendation implements AdminService.
func (h *Handler) RejectRecommendation(ctx context.Context, req *connect.Request[bridgev1.RejectRecommendationRequest]) (*connect.Response[bridgev1.RejectRecommendationResponse], error) {
	if err := required("id", req.Msg.GetId()); err != nil {
		return nil, err
	}
	rec, err := h.cfg.Engine.Reject(ctx, req.Msg.GetId(), Actor(ctx), req.Msg.GetReason())
	if err != nil {
		return nil, h.toConnect("reject", err)
	}
	return connect.NewResponse(&bridgev1.RejectRecommendationResponse{Recommendation: rec.Rec}), nil
}

// Rollback implements AdminService.
func (h *Handler) Rollback(ctx context.Context, req *connect.Request[bridgev1.RollbackRequest]) (*connect.Response[bridgev1.RollbackResponse], error) {
	if err := required("id", req.Msg.GetId()); err != nil {
		return nil, err
	}
	rec, v, err := h.cfg.Engine.Rollback(ctx, req.Msg.GetId(), Actor(ctx), req.Msg.GetReason())
	if err != nil {
		return nil, h.toConnect("rollback", err)
	}
	return connect.NewResponse(&bridgev1.RollbackResponse{Recommendation: rec.Rec, Version: v}), nil
}

// SetMode implements AdminService.
func (h *Handler) SetMode(ctx context.Context, req *connect.Request[bridgev1.SetModeRequest]) (*connect.Response[bridgev1.SetModeResponse], error) {
	if err := required("service", req.Msg.GetService()); err != nil {
		return nil, err
	}
	if err := h.cfg.Engine.SetMode(ctx, req.Msg.GetService(), req.Msg.GetKind(), req.Msg.GetMode(), Actor(ctx), req.Msg.GetReason()); err != nil {
		return nil, h.toConnect("set_mode", err)
	}
	return connect.NewResponse(&bridgev1.SetModeResponse{Mode: h.cfg.Engine.Mode(ctx, req.Msg.GetService(), req.Msg.GetKind())}), nil
}

// ListAudit implements AdminService.
func (h *Handler) ListAudit(ctx context.Context, req *connect.Request[bridgev1.ListAuditRequest]) (*connect.Response[bridgev1.ListAuditResponse], error) {
	limit := int(req.Msg.GetLimit())
	if limit == 0 {
		limit = 100
	}
	entries, err := h.cfg.Engine.ListAudit(ctx, req.Msg.GetRecommendationId(), limit)
	if err != nil {
		return nil, h.toConnect("list_audit", err)
	}
	return connect.NewResponse(&bridgev1.ListAuditResponse{Entries: entries}), nil
}

// ListRecommendations is the intelligence API's read of recommendations.
func (h *Handler) ListRecommendations(ctx context.Context, req *bridgev1.ListRecommendationsRequest) (*bridgev1.ListRecommendationsResponse, error) {
	recs, err := h.cfg.Engine.List(ctx, req.GetService(), req.GetStates())
	if err != nil {
		return nil, h.toConnect("list_recommendations", err)
	}
	out := &bridgev1.ListRecommendationsResponse{}
	for _, r := range recs {
		out.Recommendations = append(out.Recommendations, r.Rec)
	}
	return out, nil
}

// GetRecommendation is the intelligence API's read of one recommendation.
func (h *Handler) GetRecommendation(ctx context.Context, id string) (*bridgev1.Recommendation, error) {
	if err := required("id", id); err != nil {
		return nil, err
	}
	r, err := h.cfg.Engine.Get(ctx, id)
	if err != nil {
		return nil, h.toConnect("get_recommendation", err)
	}
	return r.Rec, nil
}

// GetStatus is the intelligence API's read of the sidecars' sync state.
func (h *Handler) GetStatus(ctx context.Context, service string) (*bridgev1.GetStatusResponse, error) {
	if h.cfg.Status == nil {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("directive status is not served by this control plane"))
	}
	st, versions, err := h.cfg.Status.Status(ctx, service)
	if err != nil {
		return nil, h.toConnect("get_status", err)
	}
	return &bridgev1.GetStatusResponse{Sidecars: st, Versions: versions}, nil
}
