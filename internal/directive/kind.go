// Package directive holds what the sidecar and the control plane share
// about the directive model beyond the generated types: naming a
// directive's kind. It owns no behaviour of either side.
package directive

import (
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// Kind returns the kind of a directive from its spec (UNSPECIFIED when none is set).
func Kind(d *bridgev1.Directive) bridgev1.DirectiveKind {
	switch d.GetSpec().(type) {
	case *bridgev1.Directive_Timeout:
		return bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT
	case *bridgev1.Directive_Retry:
		return bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY
	case *bridgev1.Directive_CircuitBreaker:
		return bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER
	case *bridgev1.Directive_RateLimit:
		return bridgev1.DirectiveKind_DIRECTIVE_KIND_RATE_LIMIT
	case *bridgev1.Directive_ConcurrencyLimit:
		return bridgev1.DirectiveKind_DIRECTIVE_KIND_CONCURRENCY_LIMIT
	case *bridgev1.Directive_ResponseCache:
		return bridgev1.DirectiveKind_DIRECTIVE_KIND_RESPONSE_CACHE
	case *bridgev1.Directive_TrafficWeights:
		return bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS
	case *bridgev1.Directive_EventSampling:
		return bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING
	}
	return bridgev1.DirectiveKind_DIRECTIVE_KIND_UNSPECIFIED
}
