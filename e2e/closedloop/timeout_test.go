package closedloop_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/policy"
)

// shifting is an upstream whose latency is uniform in [lo, lo+spread); a
// request with ?hang=1 hangs until its caller gives up.
type shifting struct {
	url        string
	lo, spread atomic.Int64
}

func startShifting(t *testing.T, lo, spread time.Duration) *shifting {
	t.Helper()
	u := &shifting{}
	u.set(lo, spread)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := time.Duration(u.lo.Load() + rand.Int64N(u.spread.Load()+1))
		if r.URL.Query().Get("hang") != "" {
			d = time.Minute
		}
		select {
		case <-time.After(d):
			io.WriteString(w, "ok")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

func (u *shifting) set(lo, spread time.Duration) {
	u.lo.Store(int64(lo))
	u.spread.Store(int64(spread))
}

// timeoutInForce is the request timeout the sidecar enforces (0 if none).
func timeoutInForce(pe *policy.Engine) time.Duration {
	for _, d := range pe.Snapshot().GetDirectives() {
		if to := d.GetTimeout(); to != nil && d.GetMode() == modeEnforce && d.GetExpiresAt().AsTime().After(time.Now()) {
			return to.GetRequestTimeout().AsDuration()
		}
	}
	return 0
}

// timeoutHistory records every timeout the sidecar put in force.
type timeoutHistory struct {
	mu   sync.Mutex
	seen []time.Duration
}

func watchTimeouts(t *testing.T, pe *policy.Engine) *timeoutHistory {
	h := &timeoutHistory{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if d := timeoutInForce(pe); d > 0 {
				h.mu.Lock()
				if n := len(h.seen); n == 0 || h.seen[n-1] != d {
					h.seen = append(h.seen, d)
				}
				h.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return h
}

func (h *timeoutHistory) list() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

// TestTimeoutFollowsLatencyShift: an upstream whose latency distribution
// shifts from 10-20 ms to well above the timeout the engine set from the
// fast tail. Right after the shift requests are cut at the old timeout; the
// timeout then follows the new distribution, each change within the
// guardrails (floor, ceiling, at most doubling per change, a cool-down),
// until healthy requests pass again. Requests that would have hung are then
// cut at the timeout in force, with the sidecar's 504.
func TestTimeoutFollowsLatencyShift(t *testing.T) {
	const (
		floor, ceiling = 50 * time.Millisecond, 3 * time.Second
		maxStep        = 1.0
		cooldown       = time.Second
	)
	cp := startControlPlane(t, func(c *optimize.Config) {
		c.TimeoutFloor, c.TimeoutCeiling = floor, ceiling
		c.MinRequests = 20 // the slow phase sees ~10 requests a second
		g := c.Guardrails[kindTimeout]
		g.MaxStep, g.Cooldown = maxStep, cooldown
		c.Guardrails[kindTimeout] = g
	})
	up := startShifting(t, 10*time.Millisecond, 10*time.Millisecond)
	proxy, pe := startSidecar(t, cp, up.url)
	cp.setMode(t, kindSampling, modeRec) // keep every event: the tail is what matters
	cp.setMode(t, kindTimeout, modeEnforce)
	hist := watchTimeouts(t, pe)
	l := startLoad(t, proxy, 6, 20*time.Millisecond)

	eventually(t, "a timeout from the fast distribution", 20*time.Second, func() bool { return timeoutInForce(pe) > 0 })
	before := timeoutInForce(pe)

	// The shift: at least twice the timeout in force, so that following it
	// takes more than one guarded step.
	lo := max(2*before, 150*time.Millisecond)
	hi := lo + lo/4
	t.Logf("fast upstream (10-20 ms): timeout %v; shifting the upstream to %v-%v", before, lo, hi)
	// Traffic pauses over the shift so that the sidecar's 1 s error-burst
	// window holds only requests to the shifted upstream.
	l.stop()
	time.Sleep(time.Second)
	shiftAt := time.Now()
	up.set(lo, hi-lo)
	l = startLoad(t, proxy, 6, 20*time.Millisecond)
	time.Sleep(time.Second)
	if c := l.take(); c[http.StatusGatewayTimeout] == 0 {
		t.Errorf("right after the shift: %v, want requests above the %v timeout cut with 504", c, before)
	}
	// The sidecar tells the control plane on its stream at once: every
	// request cut is a failure (an error burst) and a breached bound.
	eventually(t, "error-burst and latency-breach signals at the control plane", 10*time.Second, func() bool {
		return cp.signalsOf(bridgev1.SignalKind_SIGNAL_KIND_ERROR_BURST) > 0 && cp.signalsOf(bridgev1.SignalKind_SIGNAL_KIND_LATENCY_BREACH) > 0
	})
	eventually(t, "the timeout following the shift", 40*time.Second, func() bool {
		if timeoutInForce(pe) < hi+hi/10 {
			return false
		}
		l.take()
		time.Sleep(1500 * time.Millisecond)
		c := l.take()
		return total(c) >= 8 && c[http.StatusGatewayTimeout] <= max(1, total(c)/20)
	})
	after := timeoutInForce(pe)
	seen := hist.list()
	t.Logf("%v after the shift: timeout %v; timeouts in force over time %v", time.Since(shiftAt).Round(100*time.Millisecond), after, seen)
	for i, d := range seen {
		if d < floor || d > ceiling {
			t.Errorf("timeout %v outside the guardrails [%v, %v]", d, floor, ceiling)
		}
		if i > 0 {
			if r := float64(d) / float64(seen[i-1]); r > 1+maxStep+0.01 || r < 1/(1+maxStep)-0.01 {
				t.Errorf("timeout moved %v -> %v, more than the guardrail's step", seen[i-1], d)
			}
		}
	}
	if after < 2*before {
		t.Errorf("timeout %v after the shift, want above the new distribution (from %v)", after, before)
	}

	// Requests that would have hung are cut at the timeout in force.
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			lo := timeoutInForce(pe)
			start := time.Now()
			resp, err := client.Get(proxy + "/items?hang=1")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			hi := timeoutInForce(pe)
			lo, hi = min(lo, hi), max(lo, hi)
			t.Logf("hung request: %d after %v (timeout %v)", resp.StatusCode, took.Round(time.Millisecond), hi)
			if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Omnibridge-Timeout") == "" {
				t.Errorf("hung request: status %d headers %v, want the sidecar's 504", resp.StatusCode, resp.Header)
			}
			if took < lo || took > hi+time.Second {
				t.Errorf("hung request cut after %v, want at the timeout in force (%v to %v)", took, lo, hi)
			}
		})
	}
	wg.Wait()
	var explanation string
	eventually(t, "the engine's enforced timeout at the sidecar", 5*time.Second, func() bool {
		rs := cp.recs(t, kindTimeout, stEnforced)
		if len(rs) != 1 || rs[0].GetDirective().GetTimeout().GetRequestTimeout().AsDuration() != timeoutInForce(pe) {
			return false
		}
		// Read it here: the engine may move it on (kept, superseded) right after.
		explanation = rs[0].GetExplanation()
		return true
	})
	t.Logf("engine: %s", explanation)
}
