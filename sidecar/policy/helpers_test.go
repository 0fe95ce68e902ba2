package policy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/policy"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const svc = "orders"

func dir(mode bridgev1.DirectiveMode, route string, set func(d *bridgev1.Directive)) *bridgev1.Directive {
	d := &bridgev1.Directive{
		Id:        bus.NewEventID(),
		Scope:     &bridgev1.Scope{Service: svc, Route: route},
		Mode:      mode,
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
	}
	set(d)
	return d
}

const enforce = bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE
const dryRun = bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN

func retryDir(attempts uint32, ratio float64, minPerSec uint32) func(*bridgev1.Directive) {
	return func(d *bridgev1.Directive) {
		d.Spec = &bridgev1.Directive_Retry{Retry: &bridgev1.RetryPolicy{
			MaxAttempts: attempts, BackoffBase: durationpb.New(time.Millisecond),
			RetryOnStatus: []int32{502, 503, 504}, RetryOnRpcCodes: []string{"unavailable"},
			IdempotentOnly: true, BudgetRatio: ratio, MinRetriesPerSecond: minPerSec,
		}}
	}
}

func breakerDir(threshold float64, minReq uint32, window, open time.Duration, probes uint32) func(*bridgev1.Directive) {
	return func(d *bridgev1.Directive) {
		d.Spec = &bridgev1.Directive_CircuitBreaker{CircuitBreaker: &bridgev1.CircuitBreakerPolicy{
			FailureRateThreshold: threshold, MinRequests: minReq, Window: durationpb.New(window),
			OpenDuration: durationpb.New(open), HalfOpenProbes: probes, MaxEjectionPercent: 0.5,
		}}
	}
}

func timeoutDir(t time.Duration) func(*bridgev1.Directive) {
	return func(d *bridgev1.Directive) {
		d.Spec = &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(t)}}
	}
}

func rateDir(rps float64, burst uint32) func(*bridgev1.Directive) {
	return func(d *bridgev1.Directive) {
		d.Spec = &bridgev1.Directive_RateLimit{RateLimit: &bridgev1.RateLimitPolicy{RequestsPerSecond: rps, Burst: burst}}
	}
}

func snapshot(version uint64, ds ...*bridgev1.Directive) *bridgev1.DirectiveSnapshot {
	return &bridgev1.DirectiveSnapshot{Service: svc, Version: version, Directives: ds, IssuedAt: timestamppb.Now()}
}

func newEngine(t testing.TB, cfg policy.Config) *policy.Engine {
	t.Helper()
	if cfg.Service == "" {
		cfg.Service = svc
	}
	e, err := policy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustApply(t testing.TB, e *policy.Engine, s *bridgev1.DirectiveSnapshot) {
	t.Helper()
	if err := e.Apply(s); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// decisionLog collects every request's decisions, as the proxy would put
// them into the communication event.
type decisionLog struct {
	mu        sync.Mutex
	decisions []*bridgev1.PolicyDecision
	endpoints []string
}

func (l *decisionLog) count(action bridgev1.PolicyAction, dry bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, d := range l.decisions {
		if d.GetAction() == action && d.GetDryRun() == dry {
			n++
		}
	}
	return n
}

// startProxy serves a real reverse proxy with the engine around it, the way
// the sidecar composes them, and returns its URL and the decision log.
func startProxy(t testing.TB, e *policy.Engine, upstream string) (string, *decisionLog) {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = e.Transport(&http.Transport{MaxIdleConnsPerHost: 64})
	log := &decisionLog{}
	inner := e.Wrap(rp)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := policy.WithRecorder(r.Context())
		inner.ServeHTTP(w, r.WithContext(ctx))
		log.mu.Lock()
		log.decisions = append(log.decisions, policy.Decisions(ctx)...)
		log.endpoints = append(log.endpoints, policy.Endpoint(ctx))
		log.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, log
}

func get(t testing.TB, client *http.Client, u string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}
