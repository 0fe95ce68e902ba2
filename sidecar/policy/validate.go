package policy

import (
	"fmt"
	"github.com/omninode/bridge/internal/directive"
	"slices"
	"strings"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ValidationError says why a snapshot was refused, naming the directive and
// the field, so that the control plane can show it.
type ValidationError struct {
	// DirectiveID is the directive that failed; empty for snapshot fields.
	DirectiveID string
	// Field is the offending field, such as "retry.budget_ratio".
	Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *ValidationError) Error() string {
	if e.DirectiveID == "" {
		return fmt.Sprintf("snapshot: %s %s", e.Field, e.Problem)
	}
	return fmt.Sprintf("directive %s: %s %s", e.DirectiveID, e.Field, e.Problem)
}

// Validate checks a snapshot against the bounds documented in
// directives.proto without applying it. service and endpoints are the
// sidecar's own (empty service accepts any; nil endpoints skip the check of
// traffic-weight endpoints).
func Validate(snap *bridgev1.DirectiveSnapshot, service string, endpoints []string) error {
	if snap == nil {
		return &ValidationError{Field: "snapshot", Problem: "is missing"}
	}
	if snap.GetService() == "" {
		return &ValidationError{Field: "service", Problem: "is empty"}
	}
	if service != "" && snap.GetService() != service {
		return &ValidationError{Field: "service", Problem: fmt.Sprintf("%q is not this sidecar's service %q", snap.GetService(), service)}
	}
	if snap.GetVersion() == 0 {
		return &ValidationError{Field: "version", Problem: "is 0"}
	}
	seen := map[string]bool{}
	for _, d := range snap.GetDirectives() {
		if err := validateDirective(d, snap.GetService(), endpoints, true); err != nil {
			return err
		}
		if seen[d.GetId()] {
			return &ValidationError{DirectiveID: d.GetId(), Field: "id", Problem: "is duplicated"}
		}
		seen[d.GetId()] = true
	}
	return nil
}

func validateDirective(d *bridgev1.Directive, service string, endpoints []string, requireExpiry bool) error {
	id := d.GetId()
	bad := func(field, format string, args ...any) error {
		return &ValidationError{DirectiveID: id, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if id == "" {
		return &ValidationError{Field: "directive.id", Problem: "is empty"}
	}
	if d.GetScope().GetService() == "" {
		return bad("scope.service", "is empty")
	}
	if service != "" && d.GetScope().GetService() != service {
		return bad("scope.service", "%q differs from the snapshot's service %q", d.GetScope().GetService(), service)
	}
	if r := d.GetScope().GetRoute(); r != "" && !strings.HasPrefix(r, "/") {
		return bad("scope.route", "%q must start with /", r)
	}
	if requireExpiry {
		switch d.GetMode() {
		case bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN, bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE:
		default:
			return bad("mode", "%s is not dry_run or enforce", d.GetMode())
		}
		if d.GetExpiresAt() == nil {
			return bad("expires_at", "is missing")
		}
		if err := d.GetExpiresAt().CheckValid(); err != nil {
			return bad("expires_at", "is invalid: %v", err)
		}
	}
	switch s := d.GetSpec().(type) {
	case *bridgev1.Directive_Timeout:
		return checkDur(bad, "timeout.request_timeout", s.Timeout.GetRequestTimeout(), time.Millisecond, 5*time.Minute, false)
	case *bridgev1.Directive_Retry:
		p := s.Retry
		if p.GetMaxAttempts() < 2 || p.GetMaxAttempts() > 5 {
			return bad("retry.max_attempts", "%d is outside 2 to 5", p.GetMaxAttempts())
		}
		if err := checkDur(bad, "retry.per_try_timeout", p.GetPerTryTimeout(), 0, 5*time.Minute, true); err != nil {
			return err
		}
		if err := checkDur(bad, "retry.backoff_base", p.GetBackoffBase(), time.Millisecond, time.Second, false); err != nil {
			return err
		}
		for _, st := range p.GetRetryOnStatus() {
			if st != 502 && st != 503 && st != 504 {
				return bad("retry.retry_on_status", "%d is not one of 502, 503, 504", st)
			}
		}
		for _, c := range p.GetRetryOnRpcCodes() {
			if c != "unavailable" && c != "resource_exhausted" {
				return bad("retry.retry_on_rpc_codes", "%q is not unavailable or resource_exhausted", c)
			}
		}
		if len(p.GetRetryOnStatus()) == 0 && len(p.GetRetryOnRpcCodes()) == 0 {
			return bad("retry.retry_on_status", "and retry_on_rpc_codes are both empty")
		}
		if r := p.GetBudgetRatio(); !(r >= 0.01 && r <= 0.5) {
			return bad("retry.budget_ratio", "%v is outside 0.01 to 0.5", r)
		}
		if p.GetMinRetriesPerSecond() > 100 {
			return bad("retry.min_retries_per_second", "%d > 100", p.GetMinRetriesPerSecond())
		}
	case *bridgev1.Directive_CircuitBreaker:
		p := s.CircuitBreaker
		if r := p.GetFailureRateThreshold(); !(r >= 0.05 && r <= 1) {
			return bad("circuit_breaker.failure_rate_threshold", "%v is outside 0.05 to 1", r)
		}
		if p.GetMinRequests() < 5 {
			return bad("circuit_breaker.min_requests", "%d < 5", p.GetMinRequests())
		}
		if err := checkDur(bad, "circuit_breaker.window", p.GetWindow(), time.Second, 5*time.Minute, false); err != nil {
			return err
		}
		if err := checkDur(bad, "circuit_breaker.open_duration", p.GetOpenDuration(), 100*time.Millisecond, 5*time.Minute, false); err != nil {
			return err
		}
		if p.GetHalfOpenProbes() < 1 || p.GetHalfOpenProbes() > 100 {
			return bad("circuit_breaker.half_open_probes", "%d is outside 1 to 100", p.GetHalfOpenProbes())
		}
		if r := p.GetMaxEjectionPercent(); !(r >= 0 && r <= 1) {
			return bad("circuit_breaker.max_ejection_percent", "%v is outside 0 to 1", r)
		}
		if err := checkDur(bad, "circuit_breaker.slow_call_threshold", p.GetSlowCallThreshold(), 0, 5*time.Minute, true); err != nil {
			return err
		}
	case *bridgev1.Directive_RateLimit:
		p := s.RateLimit
		if r := p.GetRequestsPerSecond(); !(r >= 0.1 && r <= 1_000_000) {
			return bad("rate_limit.requests_per_second", "%v is outside 0.1 to 1,000,000", r)
		}
		if p.GetBurst() < 1 {
			return bad("rate_limit.burst", "%d < 1", p.GetBurst())
		}
	case *bridgev1.Directive_ConcurrencyLimit:
		p := s.ConcurrencyLimit
		if p.GetMinLimit() < 1 {
			return bad("concurrency_limit.min_limit", "%d < 1", p.GetMinLimit())
		}
		if p.GetMaxLimit() > 100_000 || p.GetMaxLimit() < p.GetMinLimit() {
			return bad("concurrency_limit.max_limit", "%d is outside min_limit to 100,000", p.GetMaxLimit())
		}
		if p.GetInitialLimit() < p.GetMinLimit() || p.GetInitialLimit() > p.GetMaxLimit() {
			return bad("concurrency_limit.initial_limit", "%d is outside %d to %d", p.GetInitialLimit(), p.GetMinLimit(), p.GetMaxLimit())
		}
	case *bridgev1.Directive_ResponseCache:
		p := s.ResponseCache
		if err := checkDur(bad, "response_cache.ttl", p.GetTtl(), 100*time.Millisecond, time.Hour, false); err != nil {
			return err
		}
		if p.GetMaxEntries() < 1 || p.GetMaxEntries() > 1_000_000 {
			return bad("response_cache.max_entries", "%d is outside 1 to 1,000,000", p.GetMaxEntries())
		}
		if p.GetMaxBodyBytes() < 1 || p.GetMaxBodyBytes() > 8<<20 {
			return bad("response_cache.max_body_bytes", "%d is outside 1 to 8 MiB", p.GetMaxBodyBytes())
		}
		for _, h := range p.GetVaryHeaders() {
			if h == "" {
				return bad("response_cache.vary_headers", "holds an empty name")
			}
		}
	case *bridgev1.Directive_TrafficWeights:
		p := s.TrafficWeights
		if len(p.GetEndpoints()) == 0 {
			return bad("traffic_weights.endpoints", "is empty")
		}
		var total uint64
		for _, e := range p.GetEndpoints() {
			if e.GetWeight() > 10_000 {
				return bad("traffic_weights.endpoints.weight", "%d > 10,000 for %s", e.GetWeight(), e.GetEndpoint())
			}
			if endpoints != nil && !slices.Contains(endpoints, e.GetEndpoint()) {
				return bad("traffic_weights.endpoints.endpoint", "%q is not a configured upstream endpoint", e.GetEndpoint())
			}
			total += uint64(e.GetWeight())
		}
		if total == 0 {
			return bad("traffic_weights.endpoints.weight", "all weights are 0")
		}
	case *bridgev1.Directive_EventSampling:
		if r := s.EventSampling.GetSampleRate(); !(r >= 0.001 && r <= 1) {
			return bad("event_sampling.sample_rate", "%v is outside 0.001 to 1", r)
		}
	default:
		return bad("spec", "is missing")
	}
	return nil
}

func checkDur(bad func(string, string, ...any) error, field string, d *durationpb.Duration, lo, hi time.Duration, optional bool) error {
	if d == nil {
		if optional {
			return nil
		}
		return bad(field, "is missing")
	}
	if err := d.CheckValid(); err != nil {
		return bad(field, "is invalid: %v", err)
	}
	v := d.AsDuration()
	if optional && v == 0 {
		return nil
	}
	if v < lo || v > hi {
		return bad(field, "%v is outside %v to %v", v, lo, hi)
	}
	return nil
}

// Kind returns the kind of a directive's spec.
func Kind(d *bridgev1.Directive) bridgev1.DirectiveKind { return directive.Kind(d) }
