package optimize

import (
	"context"
	"errors"
	"fmt"
	"github.com/omninode/bridge/internal/directive"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrInvalidState is returned for an action the recommendation's state does
// not allow (rejecting an enforced one, rolling back a proposal, ...).
var ErrInvalidState = errors.New("action not allowed in the recommendation's state")

// ErrInvalidArgument is returned for a bad mode, kind or fraction.
var ErrInvalidArgument = errors.New("invalid argument")

// Apply puts a recommendation in force in mode (dry-run or enforce; unset
// means enforce), to a canary share of sidecars first when canary is in
// (0, 1), and returns it with the snapshot version that carries it.
func (e *Engine) Apply(ctx context.Context, id string, mode bridgev1.DirectiveMode, canary float64, actor, reason string) (*Record, uint64, error) {
	if mode == bridgev1.DirectiveMode_DIRECTIVE_MODE_UNSPECIFIED {
		mode = bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE
	}
	if mode != bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE && mode != bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN {
		return nil, 0, fmt.Errorf("apply %s: mode %s: %w", id, mode, ErrInvalidArgument)
	}
	if canary < 0 || canary >= 1 {
		return nil, 0, fmt.Errorf("apply %s: canary fraction %v outside 0 to 1: %w", id, canary, ErrInvalidArgument)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, err := e.store.Get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	switch rec.Rec.GetState() {
	case bridgev1.RecommendationState_RECOMMENDATION_STATE_REJECTED, bridgev1.RecommendationState_RECOMMENDATION_STATE_SUPERSEDED:
		return nil, 0, fmt.Errorf("apply %s (%s): %w", id, rec.Rec.GetState(), ErrInvalidState)
	}
	if reason == "" {
		reason = "applied in " + modeName(mode)
	}
	rec.Canary = canary
	if err := e.activateLocked(ctx, rec, mode, RouteSnapshot{}, actor, reason); err != nil {
		return nil, 0, err
	}
	v, err := e.publishLocked(ctx, rec.Service, canary)
	if err != nil {
		return nil, 0, err
	}
	rec.Version = v
	return rec, v, nil
}

// Force puts an operator-written directive in force as a recommendation of
// its own, measured and rolled back like the engine's (the directive's
// service and route come from its scope). It is enforced unless its mode
// is dry_run.
func (e *Engine) Force(ctx context.Context, d *bridgev1.Directive, baseline RouteSnapshot, actor, reason string) (*Record, uint64, error) {
	d = proto.Clone(d).(*bridgev1.Directive)
	id := bus.NewEventID()
	d.Id = id
	d.Provenance = &bridgev1.Provenance{RecommendationId: id, Author: "operator:" + actor, Reason: reason, CreatedAt: timestamppb.Now(), Confidence: 1}
	kind := directive.Kind(d)
	if kind == bridgev1.DirectiveKind_DIRECTIVE_KIND_UNSPECIFIED || d.GetScope().GetService() == "" {
		return nil, 0, fmt.Errorf("force directive: spec and scope.service are required: %w", ErrInvalidArgument)
	}
	rec := &Record{
		Rec: &bridgev1.Recommendation{Id: id, Kind: kind, Directive: d, State: bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED,
			Confidence: 1, CreatedAt: timestamppb.Now(), Explanation: "Operator directive: " + reason},
		Service: d.GetScope().GetService(), Route: d.GetScope().GetRoute(),
	}
	if baseline.Requests > 0 {
		rec.Baseline = outcomeOf(baseline)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	mode := bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE
	if d.GetMode() == bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN {
		mode = d.GetMode()
	}
	if err := e.activateLocked(ctx, rec, mode, baseline, actor, "forced: "+reason); err != nil {
		return nil, 0, err
	}
	v, err := e.publishLocked(ctx, rec.Service, 0)
	return rec, v, err
}

// Reject rejects a proposed recommendation.
func (e *Engine) Reject(ctx context.Context, id, actor, reason string) (*Record, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, err := e.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Rec.GetState() != bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED {
		return nil, fmt.Errorf("reject %s (%s): %w", id, rec.Rec.GetState(), ErrInvalidState)
	}
	rec.Rec.State = bridgev1.RecommendationState_RECOMMENDATION_STATE_REJECTED
	rec.Rec.StateReason = "rejected by " + actor + ": " + reason
	if err := e.store.Put(ctx, rec); err != nil {
		return nil, err
	}
	return rec, e.audit(ctx, actor, "reject", rec, reason)
}

// Rollback removes an applied recommendation's directive from the sidecars.
func (e *Engine) Rollback(ctx context.Context, id, actor, reason string) (*Record, uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, err := e.store.Get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if !containsState(activeStates, rec.Rec.GetState()) {
		return nil, 0, fmt.Errorf("roll back %s (%s): %w", id, rec.Rec.GetState(), ErrInvalidState)
	}
	rec.Rec.State = bridgev1.RecommendationState_RECOMMENDATION_STATE_ROLLED_BACK
	rec.Rec.StateReason = "rolled back by " + actor + ": " + reason
	e.lastChange[changeKey(rec.Service, rec.Rec.GetKind(), rec.Route)] = time.Now()
	e.metrics.rollbacks.WithLabelValues("operator").Inc()
	if err := e.store.Put(ctx, rec); err != nil {
		return nil, 0, err
	}
	if err := e.audit(ctx, actor, "rollback", rec, reason); err != nil {
		return nil, 0, err
	}
	v, err := e.publishLocked(ctx, rec.Service, 0)
	return rec, v, err
}

// SetMode sets the mode of a kind for a service ("*": every service).
// Directives of that kind already in force move to the new mode when it is
// dry_run or enforce; recommend leaves them as they are.
func (e *Engine) SetMode(ctx context.Context, service string, kind bridgev1.DirectiveKind, mode bridgev1.DirectiveMode, actor, reason string) error {
	if service == "" || kind == bridgev1.DirectiveKind_DIRECTIVE_KIND_UNSPECIFIED || mode == bridgev1.DirectiveMode_DIRECTIVE_MODE_UNSPECIFIED {
		return fmt.Errorf("set mode: service, kind and mode are required: %w", ErrInvalidArgument)
	}
	if _, ok := bridgev1.DirectiveKind_name[int32(kind)]; !ok {
		return fmt.Errorf("set mode: kind %d: %w", kind, ErrInvalidArgument)
	}
	if _, ok := bridgev1.DirectiveMode_name[int32(mode)]; !ok {
		return fmt.Errorf("set mode: mode %d: %w", mode, ErrInvalidArgument)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.store.SetMode(ctx, service, kind, mode); err != nil {
		return err
	}
	if reason == "" {
		reason = kindName(kind) + " → " + modeName(mode)
	}
	if err := e.store.Audit(ctx, &bridgev1.AuditEntry{At: timestamppb.Now(), Actor: actor, Action: "set_mode", Service: service,
		Reason: fmt.Sprintf("%s %s: %s", kindName(kind), modeName(mode), reason)}); err != nil {
		return fmt.Errorf("audit set_mode: %w", err)
	}
	if mode == bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND {
		return nil
	}
	svc := service
	if svc == "*" {
		svc = ""
	}
	active, err := e.store.List(ctx, svc, activeStates)
	if err != nil {
		return err
	}
	touched := map[string]bool{}
	for _, rec := range active {
		if rec.Rec.GetKind() != kind || rec.Rec.GetDirective().GetMode() == mode {
			continue
		}
		if err := e.activateLocked(ctx, rec, mode, RouteSnapshot{}, actor, "mode set to "+modeName(mode)); err != nil {
			return err
		}
		touched[rec.Service] = true
	}
	for s := range touched {
		if _, err := e.publishLocked(ctx, s, 0); err != nil {
			return err
		}
	}
	return nil
}

// Get returns one recommendation.
func (e *Engine) Get(ctx context.Context, id string) (*Record, error) { return e.store.Get(ctx, id) }

// List returns recommendations, newest first.
func (e *Engine) List(ctx context.Context, service string, states []bridgev1.RecommendationState) ([]*Record, error) {
	return e.store.List(ctx, service, states)
}

// ListAudit returns the audit log, newest first.
func (e *Engine) ListAudit(ctx context.Context, id string, limit int) ([]*bridgev1.AuditEntry, error) {
	return e.store.ListAudit(ctx, id, limit)
}
