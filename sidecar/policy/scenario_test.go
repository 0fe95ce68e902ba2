package policy_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"
)

// flaky is an upstream that fails a share of requests with 503 at random.
type flaky struct {
	failShare atomic.Uint64 // share × 1e6
	hits      atomic.Int64
	delay     atomic.Int64 // ns
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	if d := time.Duration(f.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if rand.Float64()*1e6 < float64(f.failShare.Load()) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok")
}

func (f *flaky) setFail(share float64) { f.failShare.Store(uint64(share * 1e6)) }

func hammer(t *testing.T, client *http.Client, u string, n, workers int) (ok, codes map[int]int) {
	t.Helper()
	var mu sync.Mutex
	codes = map[int]int{}
	var wg sync.WaitGroup
	per := n / workers
	for range workers {
		wg.Go(func() {
			for range per {
				resp := get(t, client, u)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return nil, codes
}

// TestRetriesLiftSuccessWithinBudget: an upstream failing 20% with 503 at
// random; with retries enforced the client sees > 99% success while retries
// stay under the budget ratio.
func TestRetriesLiftSuccessWithinBudget(t *testing.T) {
	t.Parallel()
	up := &flaky{}
	up.setFail(0.2)
	ups := httptest.NewServer(up)
	defer ups.Close()
	e := newEngine(t, policy.Config{})
	proxy, log := startProxy(t, e, ups.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	_, before := hammer(t, client, proxy, 1000, 4)
	if share := float64(before[200]) / 1000; share > 0.85 {
		t.Fatalf("without retries success %.3f, want about 0.8", share)
	}
	const ratio = 0.3
	mustApply(t, e, snapshot(1, dir(enforce, "", retryDir(4, ratio, 1))))
	hitsBefore := up.hits.Load()
	const n = 2000
	_, codes := hammer(t, client, proxy, n, 4)
	success := float64(codes[200]) / n
	retries := log.count(bridgev1.PolicyAction_POLICY_ACTION_RETRIED, false)
	retryRate := float64(retries) / n
	t.Logf("success %.4f, retries %d (rate %.3f, budget %.2f), upstream hits %d", success, retries, retryRate, ratio, up.hits.Load()-hitsBefore)
	if success <= 0.99 {
		t.Errorf("success %.4f, want > 0.99", success)
	}
	if retryRate > ratio+float64(10)/n {
		t.Errorf("retry rate %.3f exceeds the budget %.2f", retryRate, ratio)
	}
	if got := up.hits.Load() - hitsBefore; got != int64(n+retries) {
		t.Errorf("upstream saw %d requests, want requests+retries = %d", got, n+retries)
	}
}

// TestOutageBudgetCapsLoadAndBreakerOpensThenCloses: at 100% failure the
// retry budget caps the extra load, the breaker opens (503 + Retry-After),
// and after recovery it closes again through half-open probes.
func TestOutageBudgetCapsLoadAndBreakerOpensThenCloses(t *testing.T) {
	t.Parallel()
	up := &flaky{}
	up.setFail(1)
	ups := httptest.NewServer(up)
	defer ups.Close()
	var signals atomic.Int32
	e := newEngine(t, policy.Config{OnSignal: func(s *bridgev1.CriticalSignal) {
		if s.GetKind() == bridgev1.SignalKind_SIGNAL_KIND_BREAKER_OPENED && s.GetEventId() != "" {
			signals.Add(1)
		}
	}})
	proxy, log := startProxy(t, e, ups.URL)
	client := &http.Client{}

	// Budget alone first: every request fails, retries are capped at 20%.
	const ratio = 0.2
	retry := dir(enforce, "", retryDir(3, ratio, 0))
	mustApply(t, e, snapshot(1, retry))
	const n = 200
	_, codes := hammer(t, client, proxy, n, 2)
	if codes[503] != n {
		t.Fatalf("codes %v, want all 503", codes)
	}
	extra := float64(up.hits.Load()-n) / n
	t.Logf("outage: upstream load %.2f× the client's (budget %.2f), exhausted %d", 1+extra, ratio, log.count(bridgev1.PolicyAction_POLICY_ACTION_RETRY_BUDGET_EXHAUSTED, false))
	if extra > ratio+0.02 {
		t.Errorf("extra load %.3f > budget %.2f", extra, ratio)
	}
	if log.count(bridgev1.PolicyAction_POLICY_ACTION_RETRY_BUDGET_EXHAUSTED, false) == 0 {
		t.Error("no request reported the budget exhausted")
	}

	// Add the breaker: it opens and sheds with Retry-After.
	mustApply(t, e, snapshot(2, retry, dir(enforce, "", breakerDir(0.5, 10, 2*time.Second, 300*time.Millisecond, 2))))
	hits := up.hits.Load()
	var open int
	for range 100 {
		resp := get(t, client, proxy)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" {
			open++
		}
	}
	if open < 80 {
		t.Errorf("breaker refused %d of 100, want most", open)
	}
	if got := up.hits.Load() - hits; got > 20 {
		t.Errorf("upstream saw %d requests while the breaker was open", got)
	}
	if signals.Load() == 0 {
		t.Error("no breaker-opened signal")
	}

	// Recovery: after open_duration the probes succeed and it closes.
	up.setFail(0)
	deadline := time.Now().Add(5 * time.Second)
	okRun := 0
	for okRun < 20 && time.Now().Before(deadline) {
		resp := get(t, client, proxy)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			okRun++
		} else {
			okRun = 0
			time.Sleep(50 * time.Millisecond)
		}
	}
	if okRun < 20 {
		t.Fatal("breaker did not close after recovery")
	}
}

// TestTimeoutCutsHungRequests: requests slower than the enforced timeout get
// 504 at the timeout, not when the upstream would have answered.
func TestTimeoutCutsHungRequests(t *testing.T) {
	t.Parallel()
	up := &flaky{}
	up.delay.Store(int64(3 * time.Second))
	ups := httptest.NewServer(up)
	defer ups.Close()
	e := newEngine(t, policy.Config{})
	proxy, log := startProxy(t, e, ups.URL)
	mustApply(t, e, snapshot(1, dir(enforce, "", timeoutDir(150*time.Millisecond))))
	start := time.Now()
	resp := get(t, http.DefaultClient, proxy)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if took < 150*time.Millisecond || took > time.Second {
		t.Errorf("cut after %v, want about 150ms", took)
	}
	if log.count(bridgev1.PolicyAction_POLICY_ACTION_TIMED_OUT, false) != 1 {
		t.Error("timeout decision not recorded")
	}
	// A fast upstream is untouched.
	up.delay.Store(0)
	resp = get(t, http.DefaultClient, proxy)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("fast request: status %d", resp.StatusCode)
	}
}

// TestWeightsShiftTraffic: traffic follows the weights; weight 0 drains a
// canary endpoint; the chosen endpoint is reported.
func TestWeightsShiftTraffic(t *testing.T) {
	t.Parallel()
	var stable, canary atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stable.Add(1) }))
	defer s.Close()
	c := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { canary.Add(1) }))
	defer c.Close()
	e := newEngine(t, policy.Config{Endpoints: []string{s.URL, c.URL}})
	proxy, log := startProxy(t, e, s.URL)
	weightsDir := func(ws, wc uint32) *bridgev1.Directive {
		return dir(enforce, "", func(d *bridgev1.Directive) {
			d.Spec = &bridgev1.Directive_TrafficWeights{TrafficWeights: &bridgev1.TrafficWeightsPolicy{Endpoints: []*bridgev1.WeightedEndpoint{
				{Endpoint: s.URL, Version: "v1", Weight: ws}, {Endpoint: c.URL, Version: "v2", Weight: wc},
			}}}
		})
	}
	mustApply(t, e, snapshot(1, weightsDir(5000, 5000)))
	hammer(t, http.DefaultClient, proxy, 400, 4)
	if share := float64(canary.Load()) / 400; share < 0.35 || share > 0.65 {
		t.Errorf("canary share %.2f at 50/50", share)
	}
	mustApply(t, e, snapshot(2, weightsDir(10000, 0)))
	before := canary.Load()
	hammer(t, http.DefaultClient, proxy, 200, 4)
	if canary.Load() != before {
		t.Errorf("drained canary still got %d requests", canary.Load()-before)
	}
	log.mu.Lock()
	last := log.endpoints[len(log.endpoints)-1]
	log.mu.Unlock()
	if last != s.URL {
		t.Errorf("reported endpoint %q, want %q", last, s.URL)
	}
}

// TestDryRunRateLimitReportsWithoutShedding: a dry-run rate limit records
// what it would have shed; every request still succeeds.
func TestDryRunRateLimitReportsWithoutShedding(t *testing.T) {
	t.Parallel()
	ups := httptest.NewServer(&flaky{})
	defer ups.Close()
	reg := prometheus.NewRegistry()
	e := newEngine(t, policy.Config{Registry: reg})
	proxy, log := startProxy(t, e, ups.URL)
	mustApply(t, e, snapshot(1, dir(dryRun, "", rateDir(1, 5))))
	_, codes := hammer(t, http.DefaultClient, proxy, 100, 2)
	if codes[200] != 100 {
		t.Fatalf("codes %v: dry-run changed traffic", codes)
	}
	would := log.count(bridgev1.PolicyAction_POLICY_ACTION_RATE_LIMITED, true)
	if would < 90 {
		t.Errorf("dry-run reported %d would-be sheds, want about 95", would)
	}
	if got := (counterValue(t, reg, "omnibridge_policy_decisions_total", "POLICY_ACTION_RATE_LIMITED", "true", "rate_limit")); int(got) != would {
		t.Errorf("dry-run counter %v, recorded %d", got, would)
	}

	// Enforced, the same limit sheds with 429 and Retry-After.
	mustApply(t, e, snapshot(2, dir(enforce, "", rateDir(1, 5))))
	time.Sleep(10 * time.Millisecond)
	_, codes = hammer(t, http.DefaultClient, proxy, 50, 1)
	if codes[429] < 40 {
		t.Errorf("codes %v, want most 429", codes)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i, l := range m.GetLabel() {
				if i < len(labels) && l.GetValue() != labels[i] {
					match = false
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// TestConcurrencyLimitSheds: a fixed limit of 2 sheds the third concurrent
// request with 503 and Retry-After.
func TestConcurrencyLimitSheds(t *testing.T) {
	t.Parallel()
	up := &flaky{}
	up.delay.Store(int64(300 * time.Millisecond))
	ups := httptest.NewServer(up)
	defer ups.Close()
	e := newEngine(t, policy.Config{})
	proxy, _ := startProxy(t, e, ups.URL)
	mustApply(t, e, snapshot(1, dir(enforce, "", func(d *bridgev1.Directive) {
		d.Spec = &bridgev1.Directive_ConcurrencyLimit{ConcurrencyLimit: &bridgev1.ConcurrencyLimitPolicy{
			InitialLimit: 2, MinLimit: 1, MaxLimit: 10, Algorithm: bridgev1.ConcurrencyAlgorithm_CONCURRENCY_ALGORITHM_FIXED}}
	})))
	_, codes := hammer(t, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}, proxy, 6, 6)
	if codes[200] != 2 || codes[503] != 4 {
		t.Errorf("codes %v, want 2×200 and 4×503", codes)
	}
}

// TestResponseCache: repeated reads are served from the cache; credentials,
// Set-Cookie and no-store are never cached; Vary is honoured.
func TestResponseCache(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	ups := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/cookie":
			w.Header().Set("Set-Cookie", "a=b")
		case "/nostore":
			w.Header().Set("Cache-Control", "no-store")
		case "/vary":
			w.Header().Set("Vary", "Accept-Language")
		}
		io.WriteString(w, r.URL.Path+r.Header.Get("Accept-Language"))
	}))
	defer ups.Close()
	e := newEngine(t, policy.Config{})
	proxy, log := startProxy(t, e, ups.URL)
	mustApply(t, e, snapshot(1, dir(enforce, "", func(d *bridgev1.Directive) {
		d.Spec = &bridgev1.Directive_ResponseCache{ResponseCache: &bridgev1.ResponseCachePolicy{
			Ttl: durationpb.New(time.Minute), MaxEntries: 100, MaxBodyBytes: 1 << 20}}
	})))
	fetch := func(path string, hdr ...string) string {
		req, _ := http.NewRequest(http.MethodGet, proxy+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	tests := []struct {
		name     string
		path     string
		hdr      []string
		wantHits int64 // upstream hits for three fetches
	}{
		{"plain", "/items/1", nil, 1},
		{"authorization", "/items/2", []string{"Authorization", "Bearer x"}, 3},
		{"cookie request", "/items/3", []string{"Cookie", "s=1"}, 3},
		{"set-cookie", "/cookie", nil, 3},
		{"no-store", "/nostore", nil, 3},
	}
	for _, tc := range tests {
		before := hits.Load()
		for range 3 {
			if got := fetch(tc.path, tc.hdr...); got != tc.path {
				t.Errorf("%s: body %q", tc.name, got)
			}
		}
		if got := hits.Load() - before; got != tc.wantHits {
			t.Errorf("%s: upstream hits %d, want %d", tc.name, got, tc.wantHits)
		}
	}
	before := hits.Load()
	if fetch("/vary", "Accept-Language", "fr") != "/varyfr" || fetch("/vary", "Accept-Language", "de") != "/varyde" || fetch("/vary", "Accept-Language", "fr") != "/varyfr" {
		t.Error("vary: wrong body")
	}
	if hits.Load()-before != 2 {
		t.Errorf("vary: upstream hits %d, want 2", hits.Load()-before)
	}
	if log.count(bridgev1.PolicyAction_POLICY_ACTION_CACHE_HIT, false) < 3 {
		t.Error("cache hits not recorded")
	}
}
