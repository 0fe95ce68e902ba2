package policy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/policy"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestOutlierEjection: with weights and a breaker in force, an endpoint
// that fails is ejected (its traffic goes to the healthy one) within the
// ejection cap; with a cap of 0 it is never ejected.
func TestOutlierEjection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		maxEject float64
		wantBad  bool // bad endpoint keeps getting traffic
	}{{"ejected", 0.5, false}, {"cap 0", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var badHits atomic.Int64
			good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			defer good.Close()
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				badHits.Add(1)
				http.Error(w, "down", http.StatusServiceUnavailable)
			}))
			defer bad.Close()
			e := newEngine(t, policy.Config{Endpoints: []string{good.URL, bad.URL}})
			proxy, _ := startProxy(t, e, good.URL)
			weightsD := dir(enforce, "", func(d *bridgev1.Directive) {
				d.Spec = &bridgev1.Directive_TrafficWeights{TrafficWeights: &bridgev1.TrafficWeightsPolicy{Endpoints: []*bridgev1.WeightedEndpoint{
					{Endpoint: good.URL, Weight: 5000}, {Endpoint: bad.URL, Weight: 5000}}}}
			})
			breakerD := dir(enforce, "", func(d *bridgev1.Directive) {
				d.Spec = &bridgev1.Directive_CircuitBreaker{CircuitBreaker: &bridgev1.CircuitBreakerPolicy{
					FailureRateThreshold: 0.5, MinRequests: 5, Window: durationpb.New(10 * time.Second), OpenDuration: durationpb.New(time.Minute),
					HalfOpenProbes: 1, MaxEjectionPercent: tc.maxEject}}
			})
			mustApply(t, e, snapshot(1, weightsD, breakerD))
			hammer(t, http.DefaultClient, proxy, 40, 1) // the bad endpoint fails enough to open its breaker
			before := badHits.Load()
			_, codes := hammer(t, http.DefaultClient, proxy, 100, 2)
			gotBad := badHits.Load() - before
			t.Logf("after ejection window: %v, bad endpoint hits %d", codes, gotBad)
			if tc.wantBad != (gotBad > 0) {
				t.Errorf("bad endpoint got %d requests, want traffic=%v", gotBad, tc.wantBad)
			}
			if !tc.wantBad && codes[200] != 100 {
				t.Errorf("codes %v, want all 200 once the bad endpoint is ejected", codes)
			}
		})
	}
}
