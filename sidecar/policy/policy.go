// Package policy is the sidecar's request-path policy hook: the seam through
// which directives from the control plane (timeouts, retries with budgets,
// circuit breaking, rate and concurrency limits, response caching, traffic
// weights, event sampling) act on proxied requests.
//
// The proxy calls it in three places:
//   - Wrap around the handler that forwards to the upstream (admission:
//     limits, breaker, cache, timeout);
//   - Transport around the upstream round tripper (retries, per-try
//     timeouts, weighted endpoint choice);
//   - Sample when it is about to emit a communication event.
//
// The zero Engine passes everything through unchanged. It must never block
// on anything but the request it handles, and never take a lock on the
// request path.
package policy

import (
	"context"
	"net/http"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// Engine applies the directives in force. The zero value passes through.
type Engine struct{}

// Wrap returns next wrapped with the admission policies in force.
func (e *Engine) Wrap(next http.Handler) http.Handler { return next }

// Transport returns base wrapped with the upstream policies in force.
func (e *Engine) Transport(base http.RoundTripper) http.RoundTripper { return base }

// Sample says whether the communication event of a finished request on route
// should be emitted, and the weight it then stands for (1 when every request
// is emitted). Failures are always kept.
func (e *Engine) Sample(route string, success bool) (keep bool, weight float64) {
	return true, 1
}

type recorderKey struct{}

// recorder collects the decisions policies take for one request.
type recorder struct{ decisions []*bridgev1.PolicyDecision }

// WithRecorder returns a context that collects policy decisions for one
// request; the proxy installs it before calling the wrapped handler and reads
// it back with Decisions when it builds the request's event.
func WithRecorder(ctx context.Context) context.Context {
	return context.WithValue(ctx, recorderKey{}, &recorder{})
}

// Record adds a decision to the request's recorder, if it has one.
func Record(ctx context.Context, d *bridgev1.PolicyDecision) {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		r.decisions = append(r.decisions, d)
	}
}

// Decisions returns the decisions recorded for the request (nil when none).
func Decisions(ctx context.Context) []*bridgev1.PolicyDecision {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		return r.decisions
	}
	return nil
}
