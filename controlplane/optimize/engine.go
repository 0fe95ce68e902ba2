package optimize

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Engine is the optimization engine. Its methods are safe for concurrent
// use; evaluation passes, signals and operator actions are serialized.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	metrics *metrics

	mu         sync.Mutex
	lastChange map[string]time.Time // service|kind|route -> last apply or rollback
	kvModes    map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode
}

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Guardrails == nil {
		cfg.Guardrails = DefaultGuardrails()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate optimize config: %w", err)
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, store: cfg.Store, lastChange: map[string]time.Time{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.store == nil {
		e.store = NewMemStore()
	}
	var err error
	if e.metrics, err = newMetrics(cfg.Registry); err != nil {
		return nil, fmt.Errorf("register optimize metrics: %w", err)
	}
	return e, nil
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Run evaluates every Interval until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("optimization pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick runs one pass: read modes, propose (and apply where the mode says
// so), measure enforced directives (keeping or rolling them back), and
// renew directives in force before they expire.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.metrics.passes.Inc()
	e.readKVModes(ctx)
	touched := map[string]bool{}
	for _, r := range e.cfg.Stats.Routes("", e.cfg.Window) {
		if err := e.evaluateLocked(ctx, r, nil, touched); err != nil {
			return err
		}
	}
	if err := e.measureLocked(ctx, touched); err != nil {
		return err
	}
	if err := e.renewLocked(ctx, touched); err != nil {
		return err
	}
	for svc := range touched {
		if _, err := e.publishLocked(ctx, svc, 0); err != nil {
			return err
		}
	}
	return nil
}

// OnSignal reacts at once to a critical signal from a sidecar: it
// evaluates the signal's service with the protective kinds (retry,
// circuit breaker, timeout) and publishes what the modes allow. ctx is
// passed on to the publisher (the directive server uses it to reach the
// signaling sidecar first).
func (e *Engine) OnSignal(ctx context.Context, service string, sig *bridgev1.CriticalSignal) {
	e.metrics.signals.WithLabelValues(strings.ToLower(strings.TrimPrefix(sig.GetKind().String(), "SIGNAL_KIND_"))).Inc()
	e.mu.Lock()
	defer e.mu.Unlock()
	kinds := map[bridgev1.DirectiveKind]bool{
		bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY: true, bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER: true,
		bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT: true,
	}
	touched := map[string]bool{}
	for _, r := range e.cfg.Stats.Routes(service, e.cfg.Window) {
		if sig.GetRoute() != "" && r.Route != sig.GetRoute() {
			continue
		}
		if err := e.evaluateLocked(ctx, r, kinds, touched); err != nil {
			e.log.Warn("react to signal", "service", service, "err", err)
			return
		}
	}
	for svc := range touched {
		if _, err := e.publishLocked(ctx, svc, 0); err != nil {
			e.log.Warn("publish after signal", "service", svc, "err", err)
		}
	}
}

func changeKey(service string, kind bridgev1.DirectiveKind, route string) string {
	return service + "|" + kind.String() + "|" + route
}

var activeStates = []bridgev1.RecommendationState{
	bridgev1.RecommendationState_RECOMMENDATION_STATE_DRY_RUN,
	bridgev1.RecommendationState_RECOMMENDATION_STATE_ENFORCED,
	bridgev1.RecommendationState_RECOMMENDATION_STATE_KEPT,
}

// evaluateLocked proposes for one route and applies what the modes allow.
func (e *Engine) evaluateLocked(ctx context.Context, r RouteSnapshot, only map[bridgev1.DirectiveKind]bool, touched map[string]bool) error {
	recs, err := e.store.List(ctx, r.Service, append([]bridgev1.RecommendationState{bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED}, activeStates...))
	if err != nil {
		return err
	}
	find := func(kind bridgev1.DirectiveKind, route string, states ...bridgev1.RecommendationState) *Record {
		for _, rec := range recs {
			if rec.Rec.GetKind() == kind && rec.Route == route && containsState(states, rec.Rec.GetState()) {
				return rec
			}
		}
		return nil
	}
	// activeFor is the directive in force for a route: its own, or else the
	// service-wide one, as the sidecar resolves it.
	activeFor := func(kind bridgev1.DirectiveKind, route string) *Record {
		if rec := find(kind, route, activeStates...); rec != nil {
			return rec
		}
		return find(kind, "", activeStates...)
	}
	cur := func(kind bridgev1.DirectiveKind, route string) *bridgev1.Directive {
		if rec := activeFor(kind, route); rec != nil {
			return rec.Rec.GetDirective()
		}
		return nil
	}
	now := time.Now()
	for _, p := range e.propose(r, cur) {
		if only != nil && !only[p.kind] {
			continue
		}
		if find(p.kind, p.route, bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED) != nil {
			continue // one pending proposal per kind and route
		}
		mode := e.modeLocked(ctx, r.Service, p.kind)
		if active := activeFor(p.kind, p.route); active != nil {
			last, ok := e.lastChange[changeKey(r.Service, p.kind, active.Route)]
			if ok && now.Sub(last) < e.guard(p.kind).Cooldown {
				e.metrics.cooldowns.Inc()
				continue
			}
		}
		rec, err := e.recordOf(r, p)
		if err != nil {
			return err
		}
		e.metrics.proposals.WithLabelValues(kindName(p.kind)).Inc()
		if mode == bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND {
			if err := e.store.Put(ctx, rec); err != nil {
				return err
			}
			continue
		}
		if err := e.activateLocked(ctx, rec, mode, r, "engine", "mode "+modeName(mode)+" for "+kindName(p.kind)+": "+rec.Rec.GetExplanation()); err != nil {
			return err
		}
		recs = append(recs, rec)
		touched[r.Service] = true
	}
	return nil
}

func containsState(states []bridgev1.RecommendationState, s bridgev1.RecommendationState) bool {
	for _, x := range states {
		if x == s {
			return true
		}
	}
	return false
}

// recordOf turns a proposal into a PROPOSED record.
func (e *Engine) recordOf(r RouteSnapshot, p *proposal) (*Record, error) {
	id := bus.NewEventID()
	ev, err := structpb.NewStruct(p.evidence)
	if err != nil {
		return nil, fmt.Errorf("encode evidence: %w", err)
	}
	imp, err := structpb.NewStruct(p.impact)
	if err != nil {
		return nil, fmt.Errorf("encode expected impact: %w", err)
	}
	now := time.Now()
	d := p.directive
	d.Id = id
	d.Mode = bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND
	d.Provenance = &bridgev1.Provenance{RecommendationId: id, Author: "engine", Reason: p.explanation, CreatedAt: timestamppb.New(now), Confidence: p.confidence}
	return &Record{
		Rec: &bridgev1.Recommendation{
			Id: id, Kind: p.kind, Directive: d, State: bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED,
			Evidence: ev, ExpectedImpact: imp, Confidence: p.confidence, CreatedAt: timestamppb.New(now), Explanation: p.explanation,
		},
		Service: r.Service, Route: p.route, Baseline: outcomeOf(r),
	}, nil
}

// activateLocked puts a record in force in mode (dry-run or enforce),
// superseding the active record of the same kind and route, and audits it.
// The caller publishes.
func (e *Engine) activateLocked(ctx context.Context, rec *Record, mode bridgev1.DirectiveMode, baseline RouteSnapshot, actor, reason string) error {
	active, err := e.store.List(ctx, rec.Service, activeStates)
	if err != nil {
		return err
	}
	for _, old := range active {
		if old.Rec.GetId() != rec.Rec.GetId() && old.Rec.GetKind() == rec.Rec.GetKind() && old.Route == rec.Route {
			old.Rec.State = bridgev1.RecommendationState_RECOMMENDATION_STATE_SUPERSEDED
			old.Rec.StateReason = "superseded by " + rec.Rec.GetId()
			if err := e.store.Put(ctx, old); err != nil {
				return err
			}
		}
	}
	now := time.Now()
	rec.Rec.Directive.Mode = mode
	rec.Rec.Directive.ExpiresAt = timestamppb.New(now.Add(e.cfg.DirectiveTTL))
	rec.Rec.AppliedAt = timestamppb.New(now)
	rec.Rec.StateReason = ""
	if baseline.Requests > 0 {
		rec.Baseline = outcomeOf(baseline)
	}
	if mode == bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE {
		rec.Rec.State = bridgev1.RecommendationState_RECOMMENDATION_STATE_ENFORCED
		rec.EnforcedAt = now
	} else {
		rec.Rec.State = bridgev1.RecommendationState_RECOMMENDATION_STATE_DRY_RUN
	}
	rec.After, rec.Rec.EffectivenessScore = nil, nil
	e.lastChange[changeKey(rec.Service, rec.Rec.GetKind(), rec.Route)] = now
	if err := e.store.Put(ctx, rec); err != nil {
		return err
	}
	e.metrics.applied.WithLabelValues(kindName(rec.Rec.GetKind()), modeName(mode)).Inc()
	return e.audit(ctx, actor, "apply", rec, reason)
}

// publishLocked sends a service's active directives to its sidecars.
func (e *Engine) publishLocked(ctx context.Context, service string, canary float64) (uint64, error) {
	active, err := e.store.List(ctx, service, activeStates)
	if err != nil {
		return 0, err
	}
	var ds []*bridgev1.Directive
	for i := len(active) - 1; i >= 0; i-- { // oldest first: stable order
		ds = append(ds, active[i].Rec.GetDirective())
	}
	v, err := e.cfg.Publisher.Publish(ctx, service, ds, canary)
	if err != nil {
		return 0, fmt.Errorf("publish directives of %s: %w", service, err)
	}
	for _, rec := range active {
		rec.Version = v
		if err := e.store.Put(ctx, rec); err != nil {
			return v, err
		}
	}
	return v, nil
}

// renewLocked extends directives in force that would expire within half
// their life, so that only a lost control plane lets them expire.
func (e *Engine) renewLocked(ctx context.Context, touched map[string]bool) error {
	active, err := e.store.List(ctx, "", activeStates)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, rec := range active {
		if rec.Rec.GetDirective().GetExpiresAt().AsTime().Sub(now) < e.cfg.DirectiveTTL/2 {
			rec.Rec.Directive.ExpiresAt = timestamppb.New(now.Add(e.cfg.DirectiveTTL))
			if err := e.store.Put(ctx, rec); err != nil {
				return err
			}
			touched[rec.Service] = true
		}
	}
	return nil
}

func (e *Engine) audit(ctx context.Context, actor, action string, rec *Record, reason string) error {
	entry := &bridgev1.AuditEntry{At: timestamppb.Now(), Actor: actor, Action: action, Reason: reason}
	if rec != nil {
		entry.RecommendationId, entry.Service = rec.Rec.GetId(), rec.Service
	}
	if err := e.store.Audit(ctx, entry); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	e.log.Info("optimization "+action, "actor", actor, "recommendation", entry.GetRecommendationId(), "service", entry.GetService(), "reason", reason)
	return nil
}

func kindName(k bridgev1.DirectiveKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "DIRECTIVE_KIND_"))
}

func modeName(m bridgev1.DirectiveMode) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "DIRECTIVE_MODE_"))
}
