package optimize_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/directives"
	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/policy"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	proposed = bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED
	enforced = bridgev1.RecommendationState_RECOMMENDATION_STATE_ENFORCED
	kept     = bridgev1.RecommendationState_RECOMMENDATION_STATE_KEPT
	rolled   = bridgev1.RecommendationState_RECOMMENDATION_STATE_ROLLED_BACK
	dryRun   = bridgev1.RecommendationState_RECOMMENDATION_STATE_DRY_RUN
	enforce  = bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE
)

// TestRulesPropose: each kind is proposed from the evidence that calls for
// it, with evidence, confidence and expected impact, and a directive that a
// sidecar accepts.
func TestRulesPropose(t *testing.T) {
	t.Parallel()
	healthy := route(20000, 0, 5*time.Millisecond, 20*time.Millisecond)
	flaky := route(10000, 2000, 5*time.Millisecond, 20*time.Millisecond)
	down := route(1000, 1000, 5*time.Millisecond, 20*time.Millisecond)
	post := route(10000, 2000, 5*time.Millisecond, 20*time.Millisecond, "POST")
	queue := route(12000, 1200, 5*time.Millisecond, 200*time.Millisecond)
	cache := route(6000, 0, 5*time.Millisecond, 20*time.Millisecond)
	cache.RepeatedGetShare, cache.ChangeInterval = 0.9, time.Minute
	canary := route(10000, 0, 5*time.Millisecond, 20*time.Millisecond)
	canary.Endpoints = []optimize.EndpointStats{
		{Endpoint: "http://stable:1", Version: "v1", Requests: 9000, Errors: 9},
		{Endpoint: "http://canary:1", Version: "v2", Requests: 1000, Errors: 150},
	}
	tests := []struct {
		name  string
		route optimize.RouteSnapshot
		want  bridgev1.DirectiveKind
		none  []bridgev1.DirectiveKind
		check func(t *testing.T, d *bridgev1.Directive)
	}{
		{"timeout", healthy, bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT, nil, func(t *testing.T, d *bridgev1.Directive) {
			if got := d.GetTimeout().GetRequestTimeout().AsDuration(); got != 50*time.Millisecond { // p99.9 30ms ×1.5 = 45ms → floor 50ms
				t.Errorf("timeout %v, want the 50ms floor", got)
			}
		}},
		{"retry at 20% 503", flaky, bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, nil, func(t *testing.T, d *bridgev1.Directive) {
			r := d.GetRetry()
			if r.GetMaxAttempts() < 4 || math.Pow(0.2, float64(r.GetMaxAttempts())) > 0.002 || r.GetBudgetRatio() < 0.25 || r.GetBudgetRatio() > 0.5 || !r.GetIdempotentOnly() {
				t.Errorf("retry %v", r)
			}
		}},
		{"no retry in an outage, a breaker", down, bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER, []bridgev1.DirectiveKind{bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY}, nil},
		{"no retry for POST 503", post, bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT, []bridgev1.DirectiveKind{bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY}, nil},
		{"concurrency on queueing", queue, bridgev1.DirectiveKind_DIRECTIVE_KIND_CONCURRENCY_LIMIT, nil, func(t *testing.T, d *bridgev1.Directive) {
			if c := d.GetConcurrencyLimit(); c.GetAlgorithm() != bridgev1.ConcurrencyAlgorithm_CONCURRENCY_ALGORITHM_GRADIENT || c.GetInitialLimit() < 4 {
				t.Errorf("limit %v", c)
			}
		}},
		{"rate limit on collapse", queue, bridgev1.DirectiveKind_DIRECTIVE_KIND_RATE_LIMIT, nil, func(t *testing.T, d *bridgev1.Directive) {
			if r := d.GetRateLimit().GetRequestsPerSecond(); r != 240 {
				t.Errorf("rate %v, want 1.2 × 200 req/s", r)
			}
		}},
		{"cache for repeated reads", cache, bridgev1.DirectiveKind_DIRECTIVE_KIND_RESPONSE_CACHE, nil, func(t *testing.T, d *bridgev1.Directive) {
			if ttl := d.GetResponseCache().GetTtl().AsDuration(); ttl != 30*time.Second {
				t.Errorf("ttl %v, want half the change interval", ttl)
			}
		}},
		{"canary loses share", canary, bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS, nil, func(t *testing.T, d *bridgev1.Directive) {
			ws := map[string]uint32{}
			for _, w := range d.GetTrafficWeights().GetEndpoints() {
				ws[w.GetVersion()] = w.GetWeight()
			}
			if ws["v1"] != 9000 || ws["v2"] != 500 {
				t.Errorf("weights %v, want stable kept at 9000 and canary halved to 500", ws)
			}
		}},
		{"sampling for hot healthy", healthy, bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING, nil, func(t *testing.T, d *bridgev1.Directive) {
			if s := d.GetEventSampling(); s.GetSampleRate() != 0.15 || !s.GetAlwaysKeepErrors() {
				t.Errorf("sampling %v", s)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stats := &fakeStats{}
			stats.set(tc.route)
			e := newEngine(t, stats, &publisher{}, optimize.NewMemStore(), func(c *optimize.Config) {
				c.Guardrails = optimize.DefaultGuardrails()
				for k, g := range c.Guardrails {
					g.DefaultMode = bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND
					c.Guardrails[k] = g
				}
			})
			if err := e.Tick(t.Context()); err != nil {
				t.Fatal(err)
			}
			got := byKind(t, e, tc.want, proposed)
			if len(got) != 1 {
				t.Fatalf("%d %s proposals, want 1", len(got), tc.want)
			}
			rec := got[0]
			if rec.Rec.GetConfidence() <= 0 || rec.Rec.GetEvidence().GetFields()["requests"] == nil || len(rec.Rec.GetExpectedImpact().GetFields()) == 0 || rec.Rec.GetExplanation() == "" {
				t.Errorf("recommendation lacks evidence, confidence, impact or explanation: %v", rec.Rec)
			}
			if tc.check != nil {
				tc.check(t, rec.Rec.GetDirective())
			}
			for _, k := range tc.none {
				if n := len(byKind(t, e, k)); n != 0 {
					t.Errorf("%d unwanted %s proposals", n, k)
				}
			}
			// The sidecar accepts what the engine proposes.
			d := rec.Rec.GetDirective()
			d.Mode = enforce
			d.ExpiresAt = durationToTS(time.Hour)
			eng, _ := policy.New(policy.Config{Service: svc})
			if err := eng.Apply(&bridgev1.DirectiveSnapshot{Service: svc, Version: 1, Directives: []*bridgev1.Directive{d}}); err != nil {
				t.Errorf("sidecar rejects the proposal: %v", err)
			}
		})
	}
}

// TestTimeoutFollowsLatencyWithinGuardrails: when latency shifts, the
// enforced timeout moves toward the new need by at most the maximum step
// per change, once per cool-down.
func TestTimeoutFollowsLatencyWithinGuardrails(t *testing.T) {
	t.Parallel()
	stats, pub := &fakeStats{}, &publisher{}
	cooldown := 400 * time.Millisecond
	e := newEngine(t, stats, pub, optimize.NewMemStore(), func(c *optimize.Config) {
		g := c.Guardrails[bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT]
		g.DefaultMode, g.Cooldown = enforce, cooldown
		c.Guardrails[bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT] = g
		c.MeasureAfter = time.Hour
	})
	timeout := func() time.Duration {
		for _, d := range pub.directives(svc) {
			if d.GetTimeout() != nil {
				return d.GetTimeout().GetRequestTimeout().AsDuration()
			}
		}
		return 0
	}
	stats.set(route(5000, 0, 20*time.Millisecond, 200*time.Millisecond)) // p99.9 300ms
	if err := e.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := timeout(); got != 450*time.Millisecond {
		t.Fatalf("timeout %v, want 450ms (p99.9 × 1.5)", got)
	}
	stats.set(route(5000, 0, 200*time.Millisecond, 2*time.Second)) // p99.9 3s → target 4.5s
	e.Tick(t.Context())
	if got := timeout(); got != 450*time.Millisecond {
		t.Fatalf("timeout moved to %v inside the cool-down", got)
	}
	var steps []time.Duration
	for range 4 {
		time.Sleep(cooldown + 10*time.Millisecond)
		if err := e.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, timeout())
	}
	want := []time.Duration{900 * time.Millisecond, 1800 * time.Millisecond, 3600 * time.Millisecond, 4500 * time.Millisecond}
	for i := range want {
		if steps[i] != want[i] {
			t.Fatalf("timeout steps %v, want %v (at most ×2 per change)", steps, want)
		}
	}
	if n := len(byKind(t, e, bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT, bridgev1.RecommendationState_RECOMMENDATION_STATE_SUPERSEDED)); n != 4 {
		t.Errorf("%d superseded timeouts, want 4", n)
	}
}

// TestModes: recommend waits for a person; dry_run and enforce publish;
// a KV (Consul) override wins over the API; SetMode moves directives in force.
func TestModes(t *testing.T) {
	t.Parallel()
	stats, pub := &fakeStats{}, &publisher{}
	kv := directives.NewMemoryKV()
	e := newEngine(t, stats, pub, optimize.NewMemStore(), func(c *optimize.Config) { c.Modes = kv; c.MeasureAfter = time.Hour })
	stats.set(route(10000, 2000, 5*time.Millisecond, 20*time.Millisecond))
	ctx := t.Context()
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	retry := byKind(t, e, bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY)
	if len(retry) != 1 || retry[0].Rec.GetState() != proposed {
		t.Fatalf("retry %v, want one proposal (default recommend)", retry)
	}
	for _, d := range pub.directives(svc) {
		if d.GetRetry() != nil {
			t.Fatal("a recommend-mode retry reached the sidecars")
		}
	}
	if err := e.SetMode(ctx, svc, bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER, enforce, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	kv.Put(ctx, optimize.ModePrefix+svc+"/circuit_breaker", []byte("dry_run"))
	if got := func() bridgev1.DirectiveMode {
		e.Tick(ctx)
		return e.Mode(ctx, svc, bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER)
	}(); got != bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN {
		t.Errorf("mode %v, want the KV override dry_run", got)
	}
	// Apply the proposal through the API path, in dry-run, then enforce by mode.
	rec, _, err := e.Apply(ctx, retry[0].Rec.GetId(), bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN, 0, "alice", "try it")
	if err != nil || rec.Rec.GetState() != dryRun {
		t.Fatalf("apply dry-run: %v %v", rec, err)
	}
	if err := e.SetMode(ctx, svc, bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, enforce, "alice", "looks good"); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range pub.directives(svc) {
		if d.GetRetry() != nil && d.GetMode() == enforce {
			found = true
		}
	}
	if !found {
		t.Error("SetMode enforce did not move the dry-run retry to enforce")
	}
	audit, _ := e.ListAudit(ctx, "", 0)
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.GetActor()+":"+a.GetAction())
	}
	if !strings.Contains(strings.Join(actions, ","), "alice:set_mode") || !strings.Contains(strings.Join(actions, ","), "alice:apply") {
		t.Errorf("audit %v", actions)
	}
}

// TestEffectivenessKeepsGoodAndRollsBackBad: an enforced retry that lowers
// errors is kept with a positive score; a forced directive that raises
// them is rolled back automatically with the reason, audited.
func TestEffectivenessKeepsGoodAndRollsBackBad(t *testing.T) {
	t.Parallel()
	stats, pub := &fakeStats{}, &publisher{}
	e := newEngine(t, stats, pub, optimize.NewMemStore())
	ctx := t.Context()
	stats.set(route(10000, 2000, 5*time.Millisecond, 20*time.Millisecond))
	e.Tick(ctx)
	rec := byKind(t, e, bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, proposed)[0]
	if _, _, err := e.Apply(ctx, rec.Rec.GetId(), enforce, 0.5, "bob", "canary first"); err != nil {
		t.Fatal(err)
	}
	if pub.canaries[svc] != 0.5 {
		t.Errorf("canary %v", pub.canaries[svc])
	}
	stats.set(route(10000, 20, 5*time.Millisecond, 22*time.Millisecond))
	time.Sleep(5 * time.Millisecond)
	e.Tick(ctx)
	got, _ := e.Get(ctx, rec.Rec.GetId())
	if got.Rec.GetState() != kept || got.Rec.EffectivenessScore == nil || got.Rec.GetEffectivenessScore() <= 0 {
		t.Fatalf("after improvement: %v score %v", got.Rec.GetState(), got.Rec.EffectivenessScore)
	}
	if pub.promoted != 1 {
		t.Error("kept canary not promoted")
	}

	bad := &bridgev1.Directive{Scope: &bridgev1.Scope{Service: svc, Route: "/orders/{id}"},
		Spec: &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(time.Millisecond)}}}
	before := route(10000, 20, 5*time.Millisecond, 22*time.Millisecond)
	forced, _, err := e.Force(ctx, bad, before, "mallory", "test a tight timeout")
	if err != nil {
		t.Fatal(err)
	}
	stats.set(route(10000, 9800, time.Millisecond, time.Millisecond))
	time.Sleep(5 * time.Millisecond)
	e.Tick(ctx)
	got, _ = e.Get(ctx, forced.Rec.GetId())
	if got.Rec.GetState() != rolled || !strings.Contains(got.Rec.GetStateReason(), "automatic rollback") || got.Rec.GetEffectivenessScore() >= 0 {
		t.Fatalf("bad directive: %v %q %v", got.Rec.GetState(), got.Rec.GetStateReason(), got.Rec.EffectivenessScore)
	}
	for _, d := range pub.directives(svc) {
		if d.GetId() == forced.Rec.GetId() {
			t.Error("rolled-back directive still published")
		}
	}
	audit, _ := e.ListAudit(ctx, forced.Rec.GetId(), 0)
	if len(audit) == 0 || audit[0].GetAction() != "auto_rollback" || audit[0].GetActor() != "engine" || !strings.Contains(audit[0].GetReason(), "error rate") {
		t.Errorf("audit %v", audit)
	}
}

func TestActionsRefuseWrongState(t *testing.T) {
	t.Parallel()
	stats, pub := &fakeStats{}, &publisher{}
	e := newEngine(t, stats, pub, optimize.NewMemStore(), func(c *optimize.Config) { c.MeasureAfter = time.Hour })
	ctx := t.Context()
	stats.set(route(10000, 2000, 5*time.Millisecond, 20*time.Millisecond))
	e.Tick(ctx)
	rec := byKind(t, e, bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, proposed)[0]
	if _, _, err := e.Rollback(ctx, rec.Rec.GetId(), "x", ""); !errors.Is(err, optimize.ErrInvalidState) {
		t.Errorf("rollback of a proposal: %v", err)
	}
	if _, err := e.Reject(ctx, rec.Rec.GetId(), "carol", "not now"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Apply(ctx, rec.Rec.GetId(), enforce, 0, "x", ""); !errors.Is(err, optimize.ErrInvalidState) {
		t.Errorf("apply of a rejected one: %v", err)
	}
	if _, err := e.Get(ctx, "0191e7a0-0000-7000-8000-000000000000"); !errors.Is(err, optimize.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	e.Tick(ctx) // a rejected proposal may be proposed again, once
	if n := len(byKind(t, e, bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, proposed)); n != 1 {
		t.Errorf("%d pending retry proposals", n)
	}
	_ = context.Background
}
