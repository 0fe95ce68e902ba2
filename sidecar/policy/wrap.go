package policy

import (
	"context"
	"net/http"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

type reqStateKey struct{}

// reqState carries what admission decided to the upstream transport.
type reqState struct {
	breaker *entry
	probe   bool
	timeout *entry // enforced timeout whose deadline is on the context
}

// Wrap returns next wrapped with the admission policies in force.
func (e *Engine) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := e.snap.Load()
		if c == nil {
			next.ServeHTTP(w, r)
			return
		}
		e.serve(c, next, w, r)
	})
}

func (e *Engine) serve(c *compiled, next http.Handler, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := time.Now()
	route, path := routeOf(ctx), r.URL.Path

	if en := c.lookup(bridgev1.DirectiveKind_DIRECTIVE_KIND_RATE_LIMIT, route, path, now); en != nil {
		rl := en.state.(*rateLimiter)
		if !rl.lim.AllowN(now, 1) {
			e.decide(ctx, en, bridgev1.PolicyAction_POLICY_ACTION_RATE_LIMITED)
			if !en.dryRun {
				retryAfter(w, time.Duration(rl.retryAfter())*time.Second)
				http.Error(w, "rate limited by omnibridge", http.StatusTooManyRequests)
				return
			}
		}
	}

	if en := c.lookup(bridgev1.DirectiveKind_DIRECTIVE_KIND_CONCURRENCY_LIMIT, route, path, now); en != nil {
		cl := en.state.(*concurrency)
		if cl.acquire(en.dryRun) {
			defer func() { cl.release(time.Now(), time.Since(now)) }()
		} else {
			e.decide(ctx, en, bridgev1.PolicyAction_POLICY_ACTION_CONCURRENCY_LIMITED)
			if !en.dryRun {
				retryAfter(w, time.Second)
				http.Error(w, "concurrency limit reached (omnibridge)", http.StatusServiceUnavailable)
				return
			}
			defer cl.inflight.Add(-1) // counted by the forced acquire
		}
	}

	rs := &reqState{}
	if en := c.lookup(bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER, route, path, now); en != nil {
		ok, wait, probe := en.state.(*breaker).allow(now)
		if !ok {
			e.decide(ctx, en, bridgev1.PolicyAction_POLICY_ACTION_BREAKER_OPEN)
			if !en.dryRun {
				retryAfter(w, wait)
				http.Error(w, "circuit breaker open (omnibridge)", http.StatusServiceUnavailable)
				return
			}
		}
		rs.breaker, rs.probe = en, probe
	}

	var store func()
	if en := c.lookup(bridgev1.DirectiveKind_DIRECTIVE_KIND_RESPONSE_CACHE, route, path, now); en != nil && cacheableRequest(r) {
		rc := en.state.(*responseCache)
		key := rc.key(r)
		if hit := rc.get(key, r, now); hit != nil {
			e.decide(ctx, en, bridgev1.PolicyAction_POLICY_ACTION_CACHE_HIT)
			if !en.dryRun {
				hit.serve(w, r)
				return
			}
		} else {
			// Dry-run fills the cache too, so that it can report would-be hits.
			cw := &captureWriter{ResponseWriter: w, limit: rc.maxBody}
			w = cw
			store = func() { rc.put(key, r, cw, time.Now()) }
		}
	}

	var dryTimeout *entry
	if en := c.lookup(bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT, route, path, now); en != nil {
		if en.dryRun {
			dryTimeout = en
		} else {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, en.d.GetTimeout().GetRequestTimeout().AsDuration())
			defer cancel()
			rs.timeout = en
		}
	}

	ctx = context.WithValue(ctx, reqStateKey{}, rs)
	next.ServeHTTP(w, r.WithContext(ctx))

	if dryTimeout != nil && time.Since(now) > dryTimeout.d.GetTimeout().GetRequestTimeout().AsDuration() {
		e.decide(ctx, dryTimeout, bridgev1.PolicyAction_POLICY_ACTION_TIMED_OUT)
	}
	if store != nil {
		store()
	}
}
