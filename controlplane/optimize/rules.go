package optimize

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// proposal is a rule's output before it becomes a Record.
type proposal struct {
	kind        bridgev1.DirectiveKind
	route       string
	directive   *bridgev1.Directive // spec and scope; id, mode, expiry set later
	evidence    map[string]any
	impact      map[string]any
	confidence  float64
	explanation string
}

// current returns the spec in force (or pending) for a kind on a route.
type currentFn func(kind bridgev1.DirectiveKind, route string) *bridgev1.Directive

// propose runs every rule over one route.
func (e *Engine) propose(r RouteSnapshot, cur currentFn) []*proposal {
	if r.Requests < e.cfg.MinRequests {
		return nil
	}
	var out []*proposal
	for _, rule := range []func(RouteSnapshot, currentFn) *proposal{
		e.ruleTimeout, e.ruleRetry, e.ruleBreaker, e.ruleConcurrency, e.ruleRateLimit, e.ruleCache, e.ruleWeights, e.ruleSampling,
	} {
		if p := rule(r, cur); p != nil {
			p.route = r.Route
			out = append(out, p)
		}
	}
	return out
}

func baseEvidence(r RouteSnapshot) map[string]any {
	ev := map[string]any{
		"service": r.Service, "route": r.Route, "window": r.Window.String(), "requests": float64(r.Requests),
		"error_rate": round4(r.ErrorRate()), "rps": round4(r.RPS()),
		"p50_ms": ms(r.P50), "p90_ms": ms(r.P90), "p99_ms": ms(r.P99), "p999_ms": ms(r.P999),
	}
	if len(r.SampleTraceIDs) > 0 {
		ids := make([]any, 0, len(r.SampleTraceIDs))
		for _, id := range r.SampleTraceIDs {
			ids = append(ids, id)
		}
		ev["sample_trace_ids"] = ids
	}
	return ev
}

func ms(d time.Duration) float64 { return round4(float64(d) / float64(time.Millisecond)) }
func round4(v float64) float64   { return math.Round(v*1e4) / 1e4 }

// confidence grows with the evidence: 0.5 at 200 requests, 0.9 at 20,000.
func confidence(requests uint64, factor float64) float64 {
	c := 0.5 + 0.2*math.Log10(math.Max(1, float64(requests)/200))
	return round4(math.Max(0.05, math.Min(0.99, c*factor)))
}

func newDirective(r RouteSnapshot) *bridgev1.Directive {
	return &bridgev1.Directive{Scope: &bridgev1.Scope{Service: r.Service, Route: r.Route}}
}

// step limits a move from cur to target to the guardrail's maximum step.
func step(cur, target, maxStep float64) float64 {
	if cur <= 0 {
		return target
	}
	return math.Max(cur/(1+maxStep), math.Min(cur*(1+maxStep), target))
}

func (e *Engine) guard(k bridgev1.DirectiveKind) Guardrail {
	if g, ok := e.cfg.Guardrails[k]; ok {
		return g
	}
	return DefaultGuardrails()[k]
}

// ruleTimeout: a timeout from the observed p99.9 with a margin, a floor
// and a ceiling, moved by at most the guardrail's step.
func (e *Engine) ruleTimeout(r RouteSnapshot, cur currentFn) *proposal {
	tail := r.P999
	if tail == 0 {
		tail = r.P99 * 3 / 2
	}
	if tail == 0 {
		return nil
	}
	target := float64(tail) * e.cfg.TimeoutMargin
	target = math.Max(float64(e.cfg.TimeoutFloor), math.Min(float64(e.cfg.TimeoutCeiling), target))
	var curD float64
	if d := cur(bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT, r.Route); d != nil {
		curD = float64(d.GetTimeout().GetRequestTimeout().AsDuration())
	}
	next := time.Duration(step(curD, target, e.guard(bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT).MaxStep)).Round(time.Millisecond)
	if curD > 0 && math.Abs(float64(next)-curD)/curD < 0.2 {
		return nil
	}
	d := newDirective(r)
	d.Spec = &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(next)}}
	ev := baseEvidence(r)
	ev["target_ms"], ev["current_ms"] = ms(time.Duration(target)), ms(time.Duration(curD))
	expl := fmt.Sprintf("Timeout %v for %s %s: p99.9 is %v over %s (%d requests); %.1f× margin, floor %v, ceiling %v",
		next, r.Service, r.Route, r.P999, r.Window, r.Requests, e.cfg.TimeoutMargin, e.cfg.TimeoutFloor, e.cfg.TimeoutCeiling)
	if curD > 0 && next != time.Duration(target).Round(time.Millisecond) {
		expl += fmt.Sprintf("; moved from %v by at most the guardrail's step toward %v", time.Duration(curD), time.Duration(target).Round(time.Millisecond))
	}
	return &proposal{kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT, directive: d, evidence: ev, confidence: confidence(r.Requests, 1),
		impact: map[string]any{"hung_requests_cut_after_ms": ms(next)}, explanation: expl}
}

// ruleRetry: retries only for transient failures on idempotent routes (or
// gRPC/Connect unavailable, which means "not processed"), with a budget
// sized to the failure rate so that retries cannot amplify an outage.
func (e *Engine) ruleRetry(r RouteSnapshot, cur currentFn) *proposal {
	p := r.upstreamTransientRate()
	if p < 0.01 || r.ErrorRate() >= 0.5 || p >= 0.5 {
		return nil // nothing to gain, or an outage: retries would only add load
	}
	idem := r.idempotent()
	unavailableOnly := r.RPCCodes["unavailable"] > 0 && r.RPCCodes["unavailable"] >= r.transient()/2
	if !idem && !unavailableOnly {
		return nil
	}
	// Size for the upper end of what the evidence allows (p + 2 standard
	// errors): a budget sized to a lucky sample would run dry.
	n := float64(r.Requests + r.Retries)
	pUp := math.Min(0.49, p+2*math.Sqrt(p*(1-p)/n))
	// Aim for at most 0.1% of requests still failing after the last attempt.
	attempts := uint32(math.Ceil(math.Log(0.001) / math.Log(pUp)))
	attempts = max(2, min(5, attempts))
	budget := math.Max(0.05, math.Min(0.5, math.Round(pUp/(1-pUp)*1.3*100)/100))
	if d := cur(bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, r.Route); d != nil {
		c := d.GetRetry()
		if c.GetMaxAttempts() == attempts && math.Abs(c.GetBudgetRatio()-budget) <= 0.2*c.GetBudgetRatio() {
			return nil
		}
		budget = step(c.GetBudgetRatio(), budget, e.guard(bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY).MaxStep)
		budget = math.Max(0.01, math.Min(0.5, math.Round(budget*100)/100))
	}
	backoff := max(time.Millisecond, min(50*time.Millisecond, r.P50))
	pol := &bridgev1.RetryPolicy{MaxAttempts: attempts, BackoffBase: durationpb.New(backoff), BudgetRatio: budget, MinRetriesPerSecond: 1, IdempotentOnly: idem}
	if idem {
		pol.RetryOnStatus = []int32{502, 503, 504}
	}
	pol.RetryOnRpcCodes = []string{"unavailable"}
	d := newDirective(r)
	d.Spec = &bridgev1.Directive_Retry{Retry: pol}
	ev := baseEvidence(r)
	ev["transient_failure_rate"], ev["transient_failure_rate_upper"], ev["idempotent"], ev["retries"] = round4(p), round4(pUp), idem, float64(r.Retries)
	residual := math.Pow(pUp, float64(attempts))
	return &proposal{kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, directive: d, evidence: ev, confidence: confidence(r.Requests, 1),
		impact: map[string]any{"error_rate": round4(residual/math.Max(p, 1e-9) - 1), "upstream_load": round4(p / (1 - p))},
		explanation: fmt.Sprintf("Retry transient failures on %s %s: %.1f%% of upstream attempts (%d requests, %d retries) failed with 502/503/504 or unavailable over %s (up to %.1f%% within the evidence); "+
			"%d attempts leave about %.2f%% failing; retry budget %.0f%% of requests over 10s (min 1/s) caps the extra load in an outage",
			r.Service, r.Route, 100*p, r.Requests, r.Retries, r.Window, 100*pUp, attempts, 100*residual, 100*budget)}
}

// ruleBreaker: a circuit breaker where failures dominate.
func (e *Engine) ruleBreaker(r RouteSnapshot, cur currentFn) *proposal {
	if r.ErrorRate() < 0.5 || cur(bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER, r.Route) != nil {
		return nil
	}
	d := newDirective(r)
	d.Spec = &bridgev1.Directive_CircuitBreaker{CircuitBreaker: &bridgev1.CircuitBreakerPolicy{
		FailureRateThreshold: 0.5, MinRequests: 20, Window: durationpb.New(10 * time.Second), OpenDuration: durationpb.New(5 * time.Second),
		HalfOpenProbes: 3, MaxEjectionPercent: 0.5,
	}}
	return &proposal{kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER, directive: d, evidence: baseEvidence(r), confidence: confidence(r.Requests, 0.9),
		impact: map[string]any{"upstream_load_in_outage": -0.9},
		explanation: fmt.Sprintf("Circuit breaker on %s %s: %.0f%% of %d requests failed over %s; open at 50%% over 10s (20 requests at least), probe after 5s",
			r.Service, r.Route, 100*r.ErrorRate(), r.Requests, r.Window)}
}

// queueing reports a latency tail that shows requests waiting (p99 ten
// times the median) on a busy route.
func queueing(r RouteSnapshot) bool {
	return r.P50 > 0 && r.P99 > 10*r.P50 && r.RPS() >= 20
}

// ruleConcurrency: an adaptive (gradient) concurrency limit where the tail
// shows queueing, started from Little's law with headroom.
func (e *Engine) ruleConcurrency(r RouteSnapshot, cur currentFn) *proposal {
	if !queueing(r) || cur(bridgev1.DirectiveKind_DIRECTIVE_KIND_CONCURRENCY_LIMIT, r.Route) != nil {
		return nil
	}
	inflight := r.RPS() * r.P50.Seconds()
	initial := uint32(max(4, min(10000, math.Ceil(inflight*2))))
	d := newDirective(r)
	d.Spec = &bridgev1.Directive_ConcurrencyLimit{ConcurrencyLimit: &bridgev1.ConcurrencyLimitPolicy{
		InitialLimit: initial, MinLimit: max(1, initial/4), MaxLimit: min(100000, initial*10), Algorithm: bridgev1.ConcurrencyAlgorithm_CONCURRENCY_ALGORITHM_GRADIENT,
	}}
	ev := baseEvidence(r)
	ev["median_in_flight"] = round4(inflight)
	return &proposal{kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_CONCURRENCY_LIMIT, directive: d, evidence: ev, confidence: confidence(r.Requests, 0.7),
		impact: map[string]any{"p99": -0.5},
		explanation: fmt.Sprintf("Adaptive concurrency limit on %s %s: p99 %v is %.0f× the median %v at %.0f req/s, a sign of queueing; start at %d in flight (2× Little's law), gradient algorithm",
			r.Service, r.Route, r.P99, float64(r.P99)/float64(r.P50), r.P50, r.RPS(), initial)}
}

// ruleRateLimit: a rate limit a little above the current rate where
// queueing comes with failures (latency collapse under load).
func (e *Engine) ruleRateLimit(r RouteSnapshot, cur currentFn) *proposal {
	if !queueing(r) || r.ErrorRate() < 0.05 || cur(bridgev1.DirectiveKind_DIRECTIVE_KIND_RATE_LIMIT, r.Route) != nil {
		return nil
	}
	rps := math.Max(0.1, math.Round(r.RPS()*1.2*10)/10)
	d := newDirective(r)
	d.Spec = &bridgev1.Directive_RateLimit{RateLimit: &bridgev1.RateLimitPolicy{RequestsPerSecond: rps, Burst: uint32(max(1, rps/5))}}
	return &proposal{kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_RATE_LIMIT, directive: d, evidence: baseEvidence(r), confidence: confidence(r.Requests, 0.6),
		impact: map[string]any{"error_rate": -0.5, "p99": -0.5},
		explanation: fmt.Sprintf("Rate limit %.1f req/s on %s %s: at %.1f req/s the tail collapses (p99 %v, median %v) and %.1f%% fail; shed the excess with 429 before the service does",
			rps, r.Service, r.Route, r.RPS(), r.P99, r.P50, 100*r.ErrorRate())}
}

// ruleCache: caching for idempotent reads whose responses repeat, with a
// TTL from the observed change interval.
func (e *Engine) ruleCache(r RouteSnapshot, cur currentFn) *proposal {
	if !r.readOnly() || r.RepeatedGetShare < 0.5 || r.ErrorRate() > 0.05 || cur(bridgev1.DirectiveKind_DIRECTIVE_KIND_RESPONSE_CACHE, r.Route) != nil {
		return nil
	}
	ttl := 30 * time.Second
	if r.ChangeInterval > 0 {
		ttl = max(time.Second, min(10*time.Minute, r.ChangeInterval/2)).Round(time.Second)
	}
	d := newDirective(r)
	d.Spec = &bridgev1.Directive_ResponseCache{ResponseCache: &bridgev1.ResponseCachePolicy{
		Ttl: durationpb.New(ttl), MaxEntries: 10000, MaxBodyBytes: 1 << 20, VaryHeaders: []string{"Accept", "Accept-Encoding", "Accept-Language"},
	}}
	ev := baseEvidence(r)
	ev["repeated_get_share"], ev["change_interval"] = round4(r.RepeatedGetShare), r.ChangeInterval.String()
	return &proposal{kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_RESPONSE_CACHE, directive: d, evidence: ev, confidence: confidence(r.Requests, 0.8),
		impact: map[string]any{"upstream_load": -round4(r.RepeatedGetShare), "p50": -0.5},
		explanation: fmt.Sprintf("Cache %s %s for %v: %.0f%% of reads repeat the previous response, which changes about every %v; credentials and Set-Cookie are never cached",
			r.Service, r.Route, ttl, 100*r.RepeatedGetShare, r.ChangeInterval)}
}

// ruleWeights: shift traffic away from an endpoint (or version) whose error
// rate stands out from its peers; one that keeps failing is drained.
func (e *Engine) ruleWeights(r RouteSnapshot, cur currentFn) *proposal {
	if len(r.Endpoints) < 2 {
		return nil
	}
	minReq := max(1, e.cfg.MinRequests/10)
	best := math.Inf(1)
	for _, ep := range r.Endpoints {
		if ep.Requests >= minReq {
			best = math.Min(best, float64(ep.Errors)/float64(ep.Requests))
		}
	}
	if math.IsInf(best, 1) {
		return nil
	}
	weights := map[string]uint32{}
	versions := map[string]string{}
	var order []string
	if d := cur(bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS, r.Route); d != nil {
		for _, w := range d.GetTrafficWeights().GetEndpoints() {
			weights[w.GetEndpoint()], versions[w.GetEndpoint()] = w.GetWeight(), w.GetVersion()
			order = append(order, w.GetEndpoint())
		}
	}
	var total uint64
	for _, ep := range r.Endpoints {
		total += ep.Requests
	}
	for _, ep := range r.Endpoints {
		if _, ok := weights[ep.Endpoint]; !ok {
			weights[ep.Endpoint] = uint32(math.Round(10000 * float64(ep.Requests) / float64(max(1, total))))
			order = append(order, ep.Endpoint)
		}
		if ep.Version != "" {
			versions[ep.Endpoint] = ep.Version
		}
	}
	maxStep := e.guard(bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS).MaxStep
	var bad []string
	changed := false
	for _, ep := range r.Endpoints {
		if ep.Requests < minReq {
			continue
		}
		rate := float64(ep.Errors) / float64(ep.Requests)
		if rate > math.Max(2*best, best+0.05) && weights[ep.Endpoint] > 0 {
			w := float64(weights[ep.Endpoint]) * (1 - math.Min(0.9, maxStep))
			if w < 500 {
				w = 0 // drained
			}
			weights[ep.Endpoint] = uint32(w)
			bad = append(bad, fmt.Sprintf("%s (%s) %.1f%% errors vs best %.1f%%", ep.Endpoint, ep.Version, 100*rate, 100*best))
			changed = true
		}
	}
	if !changed {
		return nil
	}
	var sum uint64
	pol := &bridgev1.TrafficWeightsPolicy{}
	slices.Sort(order)
	for _, ep := range order {
		pol.Endpoints = append(pol.Endpoints, &bridgev1.WeightedEndpoint{Endpoint: ep, Version: versions[ep], Weight: weights[ep]})
		sum += uint64(weights[ep])
	}
	if sum == 0 {
		return nil // never drain every endpoint
	}
	d := newDirective(r)
	d.Spec = &bridgev1.Directive_TrafficWeights{TrafficWeights: pol}
	ev := baseEvidence(r)
	eps := make([]any, 0, len(r.Endpoints))
	for _, ep := range r.Endpoints {
		eps = append(eps, map[string]any{"endpoint": ep.Endpoint, "version": ep.Version, "requests": float64(ep.Requests), "errors": float64(ep.Errors), "p99_ms": ms(ep.P99)})
	}
	ev["endpoints"] = eps
	return &proposal{kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS, directive: d, evidence: ev, confidence: confidence(r.Requests, 0.9),
		impact:      map[string]any{"error_rate": -0.5},
		explanation: fmt.Sprintf("Shift traffic on %s %s away from %s", r.Service, r.Route, strings.Join(bad, "; "))}
}

// ruleSampling: sample the events of hot, healthy routes.
func (e *Engine) ruleSampling(r RouteSnapshot, cur currentFn) *proposal {
	if r.RPS() < 100 || r.ErrorRate() >= 0.01 || cur(bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING, r.Route) != nil {
		return nil
	}
	rate := math.Max(0.01, math.Min(1, math.Round(50/r.RPS()*1000)/1000))
	d := newDirective(r)
	d.Spec = &bridgev1.Directive_EventSampling{EventSampling: &bridgev1.EventSamplingPolicy{SampleRate: rate, AlwaysKeepErrors: true}}
	return &proposal{kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING, directive: d, evidence: baseEvidence(r), confidence: confidence(r.Requests, 1),
		impact: map[string]any{"bus_events": round4(rate - 1)},
		explanation: fmt.Sprintf("Sample %.1f%% of successful events on %s %s: %.0f req/s with %.2f%% errors; failures are always kept",
			100*rate, r.Service, r.Route, r.RPS(), 100*r.ErrorRate())}
}
