package policy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/policy"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestApplyRejectsInvalidAndKeepsPrevious(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mut   func(d *bridgev1.Directive)
		field string
	}{
		{"budget too high", func(d *bridgev1.Directive) { d.GetRetry().BudgetRatio = 0.9 }, "retry.budget_ratio"},
		{"attempts", func(d *bridgev1.Directive) { d.GetRetry().MaxAttempts = 9 }, "retry.max_attempts"},
		{"non-transient status", func(d *bridgev1.Directive) { d.GetRetry().RetryOnStatus = []int32{500} }, "retry.retry_on_status"},
		{"bad rpc code", func(d *bridgev1.Directive) { d.GetRetry().RetryOnRpcCodes = []string{"internal"} }, "retry.retry_on_rpc_codes"},
		{"backoff", func(d *bridgev1.Directive) { d.GetRetry().BackoffBase = durationpb.New(5 * time.Second) }, "retry.backoff_base"},
		{"no expiry", func(d *bridgev1.Directive) { d.ExpiresAt = nil }, "expires_at"},
		{"recommend mode", func(d *bridgev1.Directive) { d.Mode = bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND }, "mode"},
		{"other service", func(d *bridgev1.Directive) { d.Scope.Service = "payments" }, "scope.service"},
		{"no spec", func(d *bridgev1.Directive) { d.Spec = nil }, "spec"},
		{"timeout too long", func(d *bridgev1.Directive) { timeoutDir(time.Hour)(d) }, "timeout.request_timeout"},
		{"rate", func(d *bridgev1.Directive) { rateDir(0, 1)(d) }, "rate_limit.requests_per_second"},
		{"breaker min requests", func(d *bridgev1.Directive) { breakerDir(0.5, 2, time.Second, time.Second, 1)(d) }, "circuit_breaker.min_requests"},
		{"unknown endpoint", func(d *bridgev1.Directive) {
			d.Spec = &bridgev1.Directive_TrafficWeights{TrafficWeights: &bridgev1.TrafficWeightsPolicy{Endpoints: []*bridgev1.WeightedEndpoint{{Endpoint: "http://evil:1", Weight: 1}}}}
		}, "traffic_weights.endpoints.endpoint"},
		{"sampling", func(d *bridgev1.Directive) {
			d.Spec = &bridgev1.Directive_EventSampling{EventSampling: &bridgev1.EventSamplingPolicy{SampleRate: 2}}
		}, "event_sampling.sample_rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, policy.Config{Endpoints: []string{"http://127.0.0.1:1"}})
			good := snapshot(1, dir(enforce, "", retryDir(3, 0.2, 1)))
			mustApply(t, e, good)
			bad := dir(enforce, "/x", retryDir(3, 0.2, 1))
			tc.mut(bad)
			err := e.Apply(snapshot(2, bad))
			var ve *policy.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Apply = %v, want a ValidationError", err)
			}
			if ve.Field != tc.field || (ve.DirectiveID != bad.GetId() && tc.field != "scope.service") {
				t.Errorf("error %q names %s/%s, want %s/%s", err, ve.DirectiveID, ve.Field, bad.GetId(), tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("reason %q does not name the field", err)
			}
			if e.Version() != 1 || !proto.Equal(e.Snapshot(), good) {
				t.Errorf("version %d after a rejected snapshot, want 1 kept", e.Version())
			}
		})
	}
}

func TestApplyRefusesOlderVersion(t *testing.T) {
	t.Parallel()
	e := newEngine(t, policy.Config{})
	mustApply(t, e, snapshot(5))
	if err := e.Apply(snapshot(4)); !errors.Is(err, policy.ErrStaleVersion) {
		t.Errorf("Apply(4) = %v, want ErrStaleVersion", err)
	}
	if err := e.Apply(snapshot(5)); err != nil {
		t.Errorf("re-applying the same version (resync) = %v", err)
	}
}

// fakeRT is an upstream round tripper for tests under synctest (no sockets).
type fakeRT struct {
	calls  atomic.Int64
	status atomic.Int64
	delay  time.Duration
}

func (f *fakeRT) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return &http.Response{StatusCode: int(f.status.Load()), Header: http.Header{}, Body: io.NopCloser(strings.NewReader("x")), Request: r}, nil
}

type recorderW struct {
	h    http.Header
	code int
}

func (r *recorderW) Header() http.Header         { return r.h }
func (r *recorderW) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorderW) WriteHeader(c int)           { r.code = c }

// through sends one request through Wrap and Transport around rt.
func through(e *policy.Engine, rt http.RoundTripper) (int, http.Header) {
	tr := e.Transport(rt)
	h := e.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://upstream"+r.URL.Path, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	w := &recorderW{h: http.Header{}, code: 200}
	r, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://sidecar/orders/1", nil)
	h.ServeHTTP(w, r)
	return w.code, w.h
}

// TestDirectiveExpiresOnSchedule: an expired directive stops acting at its
// expires_at, with no word from the control plane.
func TestDirectiveExpiresOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEngine(t, policy.Config{})
		d := dir(enforce, "/orders/{id}", rateDir(0.1, 1))
		d.ExpiresAt = timestamppb.New(time.Now().Add(time.Minute))
		mustApply(t, e, snapshot(1, d))
		rt := &fakeRT{}
		rt.status.Store(200)
		if c, _ := through(e, rt); c != 200 {
			t.Fatalf("first request %d", c)
		}
		if c, h := through(e, rt); c != 429 || h.Get("Retry-After") != "10" {
			t.Fatalf("second request %d Retry-After %q, want 429 and 10", c, h.Get("Retry-After"))
		}
		time.Sleep(time.Minute)
		if c, _ := through(e, rt); c != 200 {
			t.Errorf("after expiry %d, want 200 (static default: no limit)", c)
		}
		if len(e.Active()) != 0 {
			t.Errorf("active %v after expiry", e.Active())
		}
	})
}

// TestBreakerHalfOpenTiming walks the breaker through open, half-open and
// closed with virtual time.
func TestBreakerHalfOpenTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEngine(t, policy.Config{})
		mustApply(t, e, snapshot(1, dir(enforce, "", breakerDir(0.5, 10, 10*time.Second, 5*time.Second, 2))))
		rt := &fakeRT{}
		rt.status.Store(503)
		for range 10 {
			through(e, rt)
		}
		if c, h := through(e, rt); c != 503 || h.Get("Retry-After") != "5" {
			t.Fatalf("open breaker: %d Retry-After %q", c, h.Get("Retry-After"))
		}
		calls := rt.calls.Load()
		time.Sleep(4 * time.Second)
		through(e, rt)
		if rt.calls.Load() != calls {
			t.Fatal("request reached the upstream before open_duration")
		}
		time.Sleep(time.Second)
		rt.status.Store(503)
		through(e, rt) // probe fails: open again
		if rt.calls.Load() != calls+1 {
			t.Fatalf("half-open let %d through, want 1 probe", rt.calls.Load()-calls)
		}
		through(e, rt)
		if rt.calls.Load() != calls+1 {
			t.Fatal("breaker did not reopen after a failed probe")
		}
		time.Sleep(5 * time.Second)
		rt.status.Store(200)
		for range 2 {
			if c, _ := through(e, rt); c != 200 {
				t.Fatalf("probe %d", c)
			}
		}
		for range 20 {
			if c, _ := through(e, rt); c != 200 {
				t.Fatalf("closed breaker refused: %d", c)
			}
		}
	})
}

// TestRetryBudgetWindow: the budget refills as the 10-second window slides.
func TestRetryBudgetWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEngine(t, policy.Config{})
		mustApply(t, e, snapshot(1, dir(enforce, "", retryDir(2, 0.1, 0))))
		rt := &fakeRT{}
		rt.status.Store(503)
		for range 100 {
			through(e, rt)
		}
		if got := rt.calls.Load(); got != 110 {
			t.Fatalf("upstream calls %d, want 100 + 10 retries (10%% budget)", got)
		}
		time.Sleep(11 * time.Second)
		rt.calls.Store(0)
		for range 50 {
			through(e, rt)
		}
		if got := rt.calls.Load(); got != 55 {
			t.Fatalf("after the window slid: %d calls, want 55", got)
		}
	})
}

// TestDryRunTimeoutDoesNotCut: a dry-run timeout lets the slow request
// finish and records that it would have cut it.
func TestDryRunTimeoutDoesNotCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEngine(t, policy.Config{})
		mustApply(t, e, snapshot(1, dir(dryRun, "", timeoutDir(time.Second))))
		rt := &fakeRT{delay: 3 * time.Second}
		rt.status.Store(200)
		ctx := policy.WithRecorder(context.Background())
		h := e.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://u/", nil)
			resp, err := e.Transport(rt).RoundTrip(req)
			if err != nil {
				t.Errorf("dry-run timeout cut the request: %v", err)
				return
			}
			resp.Body.Close()
		}))
		r, _ := http.NewRequestWithContext(ctx, "GET", "http://s/", nil)
		h.ServeHTTP(&recorderW{h: http.Header{}}, r)
		ds := policy.Decisions(ctx)
		if len(ds) != 1 || ds[0].GetAction() != bridgev1.PolicyAction_POLICY_ACTION_TIMED_OUT || !ds[0].GetDryRun() {
			t.Errorf("decisions %v, want one dry-run TIMED_OUT", ds)
		}
	})
}

func TestSample(t *testing.T) {
	t.Parallel()
	e := newEngine(t, policy.Config{})
	if keep, w := e.Sample("/a", true); !keep || w != 1 {
		t.Fatal("no directive: must keep all")
	}
	mustApply(t, e, snapshot(1, dir(enforce, "/hot", func(d *bridgev1.Directive) {
		d.Spec = &bridgev1.Directive_EventSampling{EventSampling: &bridgev1.EventSamplingPolicy{SampleRate: 0.1, AlwaysKeepErrors: true}}
	})))
	kept := 0
	for range 10000 {
		if keep, w := e.Sample("/hot", true); keep {
			kept++
			if w != 10 {
				t.Fatalf("weight %v, want 10", w)
			}
		}
	}
	if kept < 800 || kept > 1200 {
		t.Errorf("kept %d of 10000 at 10%%", kept)
	}
	if keep, _ := e.Sample("/hot", false); !keep {
		t.Error("failure dropped")
	}
	if keep, _ := e.Sample("/cold", true); !keep {
		t.Error("other route sampled")
	}
}

// TestDrawKeptAlwaysKept: a request drawn in at arrival (its sequence
// number reserved then) is emitted whatever its outcome, so no reserved
// number is left unused; one drawn out is emitted only as a kept failure
// or in dry-run.
func TestDrawKeptAlwaysKept(t *testing.T) {
	t.Parallel()
	e := newEngine(t, policy.Config{})
	if d := e.Draw("/a"); !d.Kept() {
		t.Fatal("no directive: the draw must keep")
	}
	mustApply(t, e, snapshot(1,
		dir(enforce, "/hot", func(d *bridgev1.Directive) {
			d.Spec = &bridgev1.Directive_EventSampling{EventSampling: &bridgev1.EventSamplingPolicy{SampleRate: 0.5, AlwaysKeepErrors: true}}
		}),
		dir(enforce, "/strict", func(d *bridgev1.Directive) {
			d.Spec = &bridgev1.Directive_EventSampling{EventSampling: &bridgev1.EventSamplingPolicy{SampleRate: 0.5}}
		}),
		dir(dryRun, "/dry", func(d *bridgev1.Directive) {
			d.Spec = &bridgev1.Directive_EventSampling{EventSampling: &bridgev1.EventSamplingPolicy{SampleRate: 0.5}}
		})))
	var in, out int
	for range 2000 {
		for _, route := range []string{"/hot", "/strict"} {
			d := e.Draw(route)
			for _, success := range []bool{true, false} {
				keep, w := e.Keep(d, success)
				switch {
				case d.Kept() && (!keep || w != 2):
					t.Fatalf("%s: drawn in, success=%v: keep %v weight %v, want kept at weight 2", route, success, keep, w)
				case !d.Kept() && route == "/hot" && keep != !success:
					t.Fatalf("/hot: drawn out, success=%v: keep %v, want only failures kept", success, keep)
				case !d.Kept() && route == "/strict" && keep:
					t.Fatalf("/strict: drawn out, success=%v: kept", success)
				}
			}
			if d.Kept() {
				in++
			} else {
				out++
			}
		}
		if keep, w := e.Keep(e.Draw("/dry"), true); !keep || (w != 1 && w != 2) {
			t.Fatalf("dry run: keep %v weight %v, want always kept", keep, w)
		}
	}
	if in < 1600 || out < 1600 {
		t.Errorf("drawn in %d, out %d of 4000 at 50%%", in, out)
	}
}

func TestStateRoundTripDropsExpired(t *testing.T) {
	t.Parallel()
	dirp := t.TempDir()
	if s, err := policy.LoadState(dirp); s != nil || err != nil {
		t.Fatalf("empty dir: %v %v", s, err)
	}
	live := dir(enforce, "", timeoutDir(time.Second))
	old := dir(enforce, "", rateDir(1, 1))
	old.ExpiresAt = timestamppb.New(time.Now().Add(-time.Second))
	if err := policy.SaveState(dirp, snapshot(7, live, old)); err != nil {
		t.Fatal(err)
	}
	s, err := policy.LoadState(dirp)
	if err != nil {
		t.Fatal(err)
	}
	if s.GetVersion() != 7 || len(s.GetDirectives()) != 1 || s.GetDirectives()[0].GetId() != live.GetId() {
		t.Errorf("loaded %v", s)
	}
	e := newEngine(t, policy.Config{})
	mustApply(t, e, s)
}

func TestRouteTemplates(t *testing.T) {
	t.Parallel()
	e := newEngine(t, policy.Config{})
	mustApply(t, e, snapshot(1, dir(enforce, "/orders/{id}", rateDir(0.1, 1))))
	rt := &fakeRT{}
	rt.status.Store(200)
	through(e, rt)
	if c, _ := through(e, rt); c != 429 {
		t.Errorf("templated route not matched: %d", c)
	}
}
