package optimize

import (
	"context"
	"fmt"
	"math"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// Score compares a route's outcome after a change with the one before, -1
// (much worse) to 1 (much better): half error rate, three tenths p99
// latency, two tenths successful throughput, each as a relative change.
func Score(before, after *Outcome) float64 {
	rel := func(b, a float64) float64 { // positive when a is lower (better) than b
		den := math.Max(b, a)
		if den <= 0 {
			return 0
		}
		return (b - a) / den
	}
	errFloor := 0.001 // differences under 0.1 point are noise
	err := rel(math.Max(before.ErrorRate, errFloor), math.Max(after.ErrorRate, errFloor))
	lat := rel(float64(before.P99), float64(after.P99))
	okBefore, okAfter := before.RPS*(1-before.ErrorRate), after.RPS*(1-after.ErrorRate)
	thr := -rel(okBefore, okAfter)
	return math.Max(-1, math.Min(1, 0.5*err+0.3*lat+0.2*thr))
}

// measureLocked scores enforced directives once they have been in force
// for MeasureAfter with enough traffic, keeps the helpful and rolls back
// the harmful ones.
func (e *Engine) measureLocked(ctx context.Context, touched map[string]bool) error {
	enforced, err := e.store.List(ctx, "", []bridgev1.RecommendationState{bridgev1.RecommendationState_RECOMMENDATION_STATE_ENFORCED})
	if err != nil {
		return err
	}
	now := time.Now()
	for _, rec := range enforced {
		if rec.Baseline == nil || now.Sub(rec.EnforcedAt) < e.cfg.MeasureAfter {
			continue
		}
		window := min(now.Sub(rec.EnforcedAt), e.cfg.Window)
		var after *RouteSnapshot
		for _, r := range e.cfg.Stats.Routes(rec.Service, window) {
			if rec.Route == "" || r.Route == rec.Route {
				if after == nil {
					c := r
					after = &c
				} else {
					merged := mergeRoutes(*after, r)
					after = &merged
				}
			}
		}
		if after == nil || after.Requests < e.cfg.MinRequests {
			continue // not significant yet
		}
		out := outcomeOf(*after)
		score := math.Round(Score(rec.Baseline, out)*100) / 100
		rec.After = out
		rec.Rec.EffectivenessScore = &score
		e.metrics.scores.Observe(score)
		why := fmt.Sprintf("effectiveness %.2f: error rate %.2f%% → %.2f%%, p99 %v → %v, %.1f → %.1f req/s (%d requests before, %d after)",
			score, 100*rec.Baseline.ErrorRate, 100*out.ErrorRate, rec.Baseline.P99, out.P99, rec.Baseline.RPS, out.RPS, rec.Baseline.Requests, out.Requests)
		if score < e.cfg.RollbackBelow {
			rec.Rec.State = bridgev1.RecommendationState_RECOMMENDATION_STATE_ROLLED_BACK
			rec.Rec.StateReason = "automatic rollback, worse than before: " + why
			e.lastChange[changeKey(rec.Service, rec.Rec.GetKind(), rec.Route)] = now
			e.metrics.rollbacks.WithLabelValues("auto").Inc()
			if err := e.store.Put(ctx, rec); err != nil {
				return err
			}
			if err := e.audit(ctx, "engine", "auto_rollback", rec, rec.Rec.GetStateReason()); err != nil {
				return err
			}
			touched[rec.Service] = true
			continue
		}
		rec.Rec.State = bridgev1.RecommendationState_RECOMMENDATION_STATE_KEPT
		rec.Rec.StateReason = "kept: " + why
		if err := e.store.Put(ctx, rec); err != nil {
			return err
		}
		if err := e.audit(ctx, "engine", "keep", rec, rec.Rec.GetStateReason()); err != nil {
			return err
		}
		if rec.Canary > 0 {
			if err := e.cfg.Publisher.Promote(ctx, rec.Service); err != nil {
				return fmt.Errorf("promote canary of %s: %w", rec.Service, err)
			}
		}
	}
	return nil
}

// mergeRoutes adds b's counts to a (for a service-wide directive measured
// over several routes); percentiles take the worse of the two.
func mergeRoutes(a, b RouteSnapshot) RouteSnapshot {
	a.Requests += b.Requests
	a.Errors += b.Errors
	a.P50, a.P99 = max(a.P50, b.P50), max(a.P99, b.P99)
	a.Window = max(a.Window, b.Window)
	return a
}
