package closedloop_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	kindRetry    = bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY
	kindBreaker  = bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER
	kindSampling = bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING
	kindTimeout  = bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT
	modeEnforce  = bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE
	modeRec      = bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND
	stEnforced   = bridgev1.RecommendationState_RECOMMENDATION_STATE_ENFORCED
	stRolledBack = bridgev1.RecommendationState_RECOMMENDATION_STATE_ROLLED_BACK
)

// TestRetriesBudgetAndBreaker: an upstream failing 20% with 503. The
// engine, reading statistics from the bus, proposes retries with a budget;
// enforced, the client's success rises above 99% with retries under the
// budget. When the upstream fails 100%, the budget caps the extra load, the
// breaker opens (the engine reacts to the stats and the sidecar's signal),
// and it closes after recovery.
func TestRetriesBudgetAndBreaker(t *testing.T) {
	cp := startControlPlane(t, nil)
	up := startUpstream(t)
	up.setFail(0.2)
	proxy, pe := startSidecar(t, cp, up.url)
	cp.setMode(t, kindSampling, modeRec) // keep every event: the test counts them
	cp.setMode(t, kindRetry, modeEnforce)
	cp.setMode(t, kindBreaker, modeEnforce)

	l := startLoad(t, proxy, 4, 5*time.Millisecond)
	var retry *bridgev1.Recommendation
	eventually(t, "an enforced retry recommendation", 20*time.Second, func() bool {
		rs := cp.recs(t, kindRetry, stEnforced)
		if len(rs) == 0 {
			return false
		}
		retry = rs[0]
		return active(pe, retry.GetId())
	})
	rp := retry.GetDirective().GetRetry()
	t.Logf("engine: %s", retry.GetExplanation())
	if rp.GetBudgetRatio() > 0.5 || rp.GetMaxAttempts() < 3 {
		t.Errorf("retry policy %v", rp)
	}
	// The retry budget counts over a sliding 10 s window: let one pass with
	// the retries in force, then measure over the next 10 s (9 s of 20%
	// failures and the first second of an outage), the budget's own window.
	time.Sleep(10 * time.Second)
	l.take()
	hits0 := up.hits.Load()
	time.Sleep(9 * time.Second)
	codes := l.take()
	hits := up.hits.Load() - hits0
	n := total(codes)
	success := float64(codes[200]) / float64(n)
	retryRate := float64(hits-int64(n)) / float64(n)
	t.Logf("with retries: %d requests, success %.4f, retry rate %.3f (budget %.2f)", n, success, retryRate, rp.GetBudgetRatio())
	if n < 50 || success <= 0.99 {
		t.Errorf("success %.4f over %d requests, want > 0.99", success, n)
	}
	if retryRate > rp.GetBudgetRatio()+10.0/float64(n) {
		t.Errorf("retry rate %.3f over the budget %.2f", retryRate, rp.GetBudgetRatio())
	}

	// Outage: the budget (retries at most budget_ratio of the requests over
	// its 10 s window, plus 1/s) caps the extra load until the breaker opens.
	up.setFail(1)
	time.Sleep(time.Second)
	outage := l.take()
	reqs := n + total(outage)
	retries := up.hits.Load() - hits0 - int64(reqs)
	t.Logf("10 s window ending 1 s into the outage: %d requests (%d in the outage), %d retries, upstream load %.2f× (budget %.2f + 1/s)",
		reqs, total(outage), retries, 1+float64(retries)/float64(reqs), rp.GetBudgetRatio())
	if allowed := rp.GetBudgetRatio()*float64(reqs) + 10; float64(retries) > allowed+1 {
		t.Errorf("%d retries in the window exceed the budget's %.0f", retries, allowed)
	}

	var breaker *bridgev1.Recommendation
	eventually(t, "an enforced breaker", 30*time.Second, func() bool {
		rs := cp.recs(t, kindBreaker, stEnforced)
		if len(rs) == 0 {
			return false
		}
		breaker = rs[0]
		return active(pe, breaker.GetId())
	})
	eventually(t, "the breaker shedding", 10*time.Second, func() bool {
		l.take()
		h := up.hits.Load()
		time.Sleep(500 * time.Millisecond)
		c := l.take()
		return total(c) > 10 && up.hits.Load()-h < int64(total(c))/4
	})
	t.Logf("breaker open: upstream spared; engine: %s", breaker.GetExplanation())

	// Recovery: half-open probes succeed and it closes.
	up.setFail(0)
	eventually(t, "recovery", 30*time.Second, func() bool {
		l.take()
		time.Sleep(time.Second)
		c := l.take()
		return total(c) > 5 && c[200] == total(c)
	})
}

// TestBadDirectiveRolledBack: a directive forced through with bad
// parameters (a 1 ms timeout) is measured as worse and rolled back
// automatically; the rollback and its reason show in the API and the audit
// (over gRPC), and the sidecar drops the directive.
func TestBadDirectiveRolledBack(t *testing.T) {
	cp := startControlPlane(t, func(c *optimize.Config) { c.MeasureAfter = 1500 * time.Millisecond })
	up := startUpstream(t)
	up.delay.Store(int64(5 * time.Millisecond))
	proxy, pe := startSidecar(t, cp, up.url)
	cp.setMode(t, kindSampling, modeRec)
	l := startLoad(t, proxy, 4, 5*time.Millisecond)
	var baseline optimize.RouteSnapshot
	eventually(t, "baseline traffic", 15*time.Second, func() bool {
		for _, r := range cp.stats.Routes(service, 3*time.Second) {
			if r.Requests >= 50 {
				baseline = r
				return true
			}
		}
		return false
	})
	bad := &bridgev1.Directive{Scope: &bridgev1.Scope{Service: service},
		Spec: &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(time.Millisecond)}}}
	rec, _, err := cp.eng.Force(t.Context(), bad, baseline, "e2e-operator", "forced bad timeout")
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Rec.GetId()
	eventually(t, "the bad directive at the sidecar", 5*time.Second, func() bool { return active(pe, id) })
	eventually(t, "504s from the bad timeout", 5*time.Second, func() bool { return l.take()[504] > 0 })
	eventually(t, "automatic rollback", 20*time.Second, func() bool { return len(cp.recs(t, kindTimeout, stRolledBack)) > 0 })
	got := cp.recs(t, kindTimeout, stRolledBack)[0]
	if got.GetId() != id || !strings.Contains(got.GetStateReason(), "automatic rollback") || got.GetEffectivenessScore() >= 0 {
		t.Errorf("rolled back %s %q score %v", got.GetId(), got.GetStateReason(), got.GetEffectivenessScore())
	}
	t.Logf("rollback reason: %s", got.GetStateReason())
	audit, err := cp.grpc.ListAudit(t.Context(), connect.NewRequest(&bridgev1.ListAuditRequest{RecommendationId: id}))
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit.Msg.GetEntries() {
		actions = append(actions, e.GetActor()+":"+e.GetAction())
	}
	if strings.Join(actions, ",") != "engine:auto_rollback,e2e-operator:apply" {
		t.Errorf("audit %v", actions)
	}
	eventually(t, "the sidecar dropping the directive", 5*time.Second, func() bool { return !active(pe, id) })
	time.Sleep(time.Second) // requests admitted under the old snapshot finish, even on a loaded machine
	l.take()
	time.Sleep(500 * time.Millisecond)
	if c := l.take(); c[504] > 0 {
		t.Errorf("504s after rollback: %v", c)
	}
}

// TestDryRunRateLimit: a dry-run rate limit reports, in the sidecar's
// events on the bus, what it would have shed, while traffic is untouched.
func TestDryRunRateLimit(t *testing.T) {
	cp := startControlPlane(t, nil)
	up := startUpstream(t)
	proxy, pe := startSidecar(t, cp, up.url)
	cp.setMode(t, kindSampling, modeRec)
	d := &bridgev1.Directive{Scope: &bridgev1.Scope{Service: service}, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN,
		Spec: &bridgev1.Directive_RateLimit{RateLimit: &bridgev1.RateLimitPolicy{RequestsPerSecond: 10, Burst: 5}}}
	rec, _, err := cp.eng.Force(t.Context(), d, optimize.RouteSnapshot{}, "e2e-operator", "what would 10 req/s shed?")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Rec.GetState() != bridgev1.RecommendationState_RECOMMENDATION_STATE_DRY_RUN {
		t.Fatalf("state %v", rec.Rec.GetState())
	}
	eventually(t, "the dry-run directive at the sidecar", 5*time.Second, func() bool { return active(pe, rec.Rec.GetId()) })
	l := startLoad(t, proxy, 4, 2*time.Millisecond)
	time.Sleep(2 * time.Second)
	l.stop()
	codes := l.take()
	if codes[200] != total(codes) || total(codes) < 30 {
		t.Fatalf("codes %v: dry-run must not change traffic", codes)
	}
	eventually(t, "would-shed decisions on the bus", 10*time.Second, func() bool {
		return cp.stats.decisions(bridgev1.PolicyAction_POLICY_ACTION_RATE_LIMITED, true) > total(codes)/2
	})
	if n := cp.stats.decisions(bridgev1.PolicyAction_POLICY_ACTION_RATE_LIMITED, false); n != 0 {
		t.Errorf("%d enforced rate-limit decisions from a dry-run directive", n)
	}
	t.Logf("%d requests, all 200; %d would have been shed", total(codes), cp.stats.decisions(bridgev1.PolicyAction_POLICY_ACTION_RATE_LIMITED, true))
}
