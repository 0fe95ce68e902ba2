package policy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// Transport returns base wrapped with the upstream policies in force.
func (e *Engine) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{e: e, base: base}
}

type transport struct {
	e    *Engine
	base http.RoundTripper
}

// maxDrain bounds how much of a failed attempt's body is read so that its
// connection can be reused.
const maxDrain = 64 << 10

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.e.snap.Load()
	if c == nil {
		if t.e.bursts == nil {
			return t.base.RoundTrip(req)
		}
		resp, err := t.base.RoundTrip(req)
		t.e.observe(req.Context(), burstRoute(req), resp, err)
		return resp, err
	}
	ctx := req.Context()
	now := time.Now()
	route, path := routeOf(ctx), req.URL.Path
	burstKey := burstRoute(req)
	rs, _ := ctx.Value(reqStateKey{}).(*reqState)
	if rs == nil {
		rs = &reqState{}
	}

	// epBreaker is the chosen endpoint's own breaker (outlier ejection) when
	// weights and a breaker are in force together.
	var epBreaker *breaker
	var epProbe bool
	if en := c.lookup(bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS, route, path, now); en != nil {
		ws := en.state.(*weights)
		w := ws.pick()
		if rs.breaker != nil {
			ej := rs.breaker.state.(*breaker).endpoints()
			alt, ejected, probe := ej.choose(ws, w, now)
			epProbe = probe
			if ejected {
				t.e.decide(ctx, rs.breaker, bridgev1.PolicyAction_POLICY_ACTION_BREAKER_OPEN)
				if !rs.breaker.dryRun {
					w = alt
				}
			}
			epBreaker = ej.get(w.GetEndpoint())
		}
		if len(t.e.cfg.Endpoints) == 0 || w.GetEndpoint() != t.e.cfg.Endpoints[0] {
			t.e.decide(ctx, en, bridgev1.PolicyAction_POLICY_ACTION_ROUTED)
		}
		if !en.dryRun {
			if u, err := url.Parse(w.GetEndpoint()); err == nil {
				req = req.Clone(ctx)
				req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
				if u.Path != "" && u.Path != "/" {
					req.URL.Path = strings.TrimSuffix(u.Path, "/") + req.URL.Path
				}
				setEndpoint(ctx, w.GetEndpoint())
			}
		}
	}

	retry := c.lookup(bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, route, path, now)
	attempts := 1
	var rp *bridgev1.RetryPolicy
	var bud *budget
	if retry != nil {
		rp = retry.d.GetRetry()
		bud = retry.state.(*budget)
		bud.request(now)
		if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
			attempts = int(rp.GetMaxAttempts())
		}
	}

	var resp *http.Response
	var err error
	for i := 0; ; i++ {
		attempt := req
		if i > 0 && req.GetBody != nil {
			body, berr := req.GetBody()
			if berr != nil {
				break
			}
			attempt = req.Clone(ctx)
			attempt.Body = body
		}
		var cancel context.CancelFunc
		if d := rp.GetPerTryTimeout().AsDuration(); rp != nil && d > 0 {
			var actx context.Context
			actx, cancel = context.WithTimeout(ctx, d)
			attempt = attempt.WithContext(actx)
		}
		start := time.Now()
		resp, err = t.base.RoundTrip(attempt)
		failed, transient := classify(resp, err, ctx)
		switch {
		case epBreaker != nil:
			epBreaker.record(ctx, time.Now(), failed, time.Since(start), epProbe && i == 0)
		case rs.breaker != nil:
			rs.breaker.state.(*breaker).record(ctx, time.Now(), failed, time.Since(start), rs.probe && i == 0)
		}
		retryable := rp != nil && transient && retryableFor(rp, req.Method, resp, err, ctx)
		if !retryable || i+1 >= attempts || ctx.Err() != nil {
			if cancel != nil {
				if resp != nil {
					resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
				} else {
					cancel()
				}
			}
			break
		}
		if !bud.tryRetry(time.Now()) {
			t.e.decide(ctx, retry, bridgev1.PolicyAction_POLICY_ACTION_RETRY_BUDGET_EXHAUSTED)
			if cancel != nil {
				if resp != nil {
					resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
				} else {
					cancel()
				}
			}
			break
		}
		t.e.decide(ctx, retry, bridgev1.PolicyAction_POLICY_ACTION_RETRIED)
		if retry.dryRun {
			if cancel != nil {
				if resp != nil {
					resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
				} else {
					cancel()
				}
			}
			break
		}
		if resp != nil {
			_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
			resp.Body.Close()
		}
		if cancel != nil {
			cancel()
		}
		if !sleep(ctx, backoff(rp.GetBackoffBase().AsDuration(), i)) {
			resp, err = nil, ctx.Err()
			break
		}
	}

	if err != nil && rs.timeout != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.e.decide(ctx, rs.timeout, bridgev1.PolicyAction_POLICY_ACTION_TIMED_OUT)
		t.e.signal(ctx, bridgev1.SignalKind_SIGNAL_KIND_LATENCY_BREACH, rs.timeout.route, time.Since(now).Seconds(), 1)
		resp = gatewayTimeout(req)
		t.e.observe(ctx, burstKey, resp, nil)
		return resp, nil
	}
	t.e.observe(ctx, burstKey, resp, err)
	return resp, err
}

// burstRoute is the route a request's outcome counts under for error
// bursts: its templated route, else its path.
func burstRoute(req *http.Request) string {
	if r := routeOf(req.Context()); r != "" {
		return r
	}
	return req.URL.Path
}

// classify says whether an attempt failed (for the breaker) and whether its
// failure is transient (502, 503, 504, a connection error, gRPC/Connect
// unavailable or resource_exhausted).
func classify(resp *http.Response, err error, parent context.Context) (failed, transient bool) {
	if err != nil {
		return true, parent.Err() == nil
	}
	if code := rpcCode(resp); code != "" {
		switch code {
		case "unavailable", "resource_exhausted":
			return true, true
		case "deadline_exceeded", "internal", "unknown", "data_loss":
			return true, false
		}
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, true
	}
	return resp.StatusCode >= 500, false
}

// retryableFor applies the retry policy's lists and its idempotency rule.
func retryableFor(p *bridgev1.RetryPolicy, method string, resp *http.Response, err error, parent context.Context) bool {
	var status int32
	var code string
	switch {
	case err != nil:
		// A per-try timeout counts as 504; a failed connection as 503/unavailable.
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			status = http.StatusGatewayTimeout
		} else {
			status, code = http.StatusServiceUnavailable, "unavailable"
		}
	default:
		status, code = int32(resp.StatusCode), rpcCode(resp)
	}
	matches := slices.Contains(p.GetRetryOnStatus(), status) || (code != "" && slices.Contains(p.GetRetryOnRpcCodes(), code))
	if !matches {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	// Non-idempotent: only when allowed and the code means "not processed".
	return !p.GetIdempotentOnly() && (status == http.StatusServiceUnavailable || code == "unavailable")
}

// rpcCode returns the gRPC or Connect code of a response that carries one in
// its headers (gRPC trailers-only responses, Connect unary errors), "" if none.
func rpcCode(resp *http.Response) string {
	if s := resp.Header.Get("Grpc-Status"); s != "" {
		switch s {
		case "14":
			return "unavailable"
		case "8":
			return "resource_exhausted"
		case "4":
			return "deadline_exceeded"
		case "13":
			return "internal"
		case "2":
			return "unknown"
		case "15":
			return "data_loss"
		}
		return "other"
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") && resp.Header.Get("Connect-Protocol-Version") != "" || resp.Request != nil && resp.Request.Header.Get("Connect-Protocol-Version") != "" {
		switch resp.StatusCode {
		case http.StatusServiceUnavailable:
			return "unavailable"
		case http.StatusTooManyRequests:
			return "resource_exhausted"
		}
	}
	return ""
}

// backoff returns the jittered exponential wait before retry n+1: uniform in
// [base·2ⁿ/2, base·2ⁿ] ("equal jitter"), n capped at 3.
func backoff(base time.Duration, n int) time.Duration {
	d := base << min(n, 3)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func gatewayTimeout(req *http.Request) *http.Response {
	const body = "upstream timed out (omnibridge timeout directive)\n"
	return &http.Response{
		Status: "504 Gateway Timeout", StatusCode: http.StatusGatewayTimeout,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Omnibridge-Timeout": {"1"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// cancelBody cancels a per-try context when the response body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelBody) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
