package dev

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
)

// demoDuration is how long the demo runs: its fault schedule has every fault
// on by 36 s and the loop's windows are 20 s, so 100 s leaves time to react
// and to measure.
const demoDuration = 100 * time.Second

// TestDevDemo runs `omnibridge dev --demo --duration 100s` once and, while it
// runs, drives its dashboard in a browser and follows the loop through the
// API; when it exits, checks its final report.
func TestDevDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 100 s")
	}
	bin := buildBinary(t)
	p := startDev(t, bin, "--demo", "--duration", demoDuration.String(),
		"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-level", "warn")
	hc := &http.Client{Timeout: 10 * time.Second}
	intel := bridgev1connect.NewIntelligenceServiceClient(hc, p.url)
	if !strings.Contains(p.Stdout(), "store          embedded in-process, NOT durable") ||
		!strings.Contains(p.Stdout(), "dashboard      "+p.url+"/ui/") {
		t.Errorf("start banner does not say what runs where:\n%s", p.Stdout())
	}

	// The loop's record as the API shows it, polled until the demo ends.
	loop := &loopWatch{}
	pollCtx, stopPoll := context.WithCancel(context.Background())
	var pollWG sync.WaitGroup
	pollWG.Go(func() { loop.run(pollCtx, intel) })

	t.Run("parts", func(t *testing.T) {
		t.Run("dashboard", func(t *testing.T) {
			t.Parallel()
			testDashboard(t, p.url, intel)
		})
	})

	ctx, cancel := context.WithTimeout(context.Background(), demoDuration+60*time.Second)
	defer cancel()
	if err := p.wait(ctx); err != nil {
		t.Fatalf("omnibridge dev --demo --duration did not exit cleanly: %v", err)
	}
	stopPoll()
	pollWG.Wait()
	out := p.Stdout()
	report := out[max(0, strings.Index(out, "omnibridge demo report")):]
	t.Logf("final report:\n%s", report)
	checkLoop(t, loop.last(), report)
}

// loopWatch keeps the latest answers of the API while the demo runs.
type loopWatch struct {
	mu   sync.Mutex
	recs []*bridgev1.Recommendation
	pats []*bridgev1.FailurePattern
}

func (w *loopWatch) run(ctx context.Context, intel bridgev1connect.IntelligenceServiceClient) {
	for ctx.Err() == nil {
		r, err := intel.ListRecommendations(ctx, connect.NewRequest(&bridgev1.ListRecommendationsRequest{}))
		pr, perr := intel.ListPatterns(ctx, connect.NewRequest(&bridgev1.ListPatternsRequest{}))
		w.mu.Lock()
		if err == nil {
			w.recs = r.Msg.GetRecommendations()
		}
		if perr == nil {
			w.pats = pr.Msg.GetPatterns()
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (w *loopWatch) last() loopState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return loopState{recs: w.recs, pats: w.pats}
}

type loopState struct {
	recs []*bridgev1.Recommendation
	pats []*bridgev1.FailurePattern
}

// applied lists the recommendations of a kind on a service that were put in
// force (enforced at some point: applied_at is set).
func (s loopState) applied(service string, kinds ...bridgev1.DirectiveKind) []*bridgev1.Recommendation {
	var out []*bridgev1.Recommendation
	for _, r := range s.recs {
		if r.GetDirective().GetScope().GetService() == service && slices.Contains(kinds, r.GetKind()) && r.GetAppliedAt() != nil {
			out = append(out, r)
		}
	}
	return out
}

func evidence(r *bridgev1.Recommendation, key string) float64 {
	return r.GetEvidence().GetFields()[key].GetNumberValue()
}

func checkLoop(t *testing.T, s loopState, report string) {
	t.Helper()
	if len(s.recs) == 0 {
		t.Fatal("the API never listed a recommendation")
	}
	// Detected: the flaky payments' 503s and the slow inventory's timeouts
	// are failure patterns.
	var payments, inventory bool
	for _, p := range s.pats {
		tmpl := strings.ToLower(p.GetTemplate())
		payments = payments || (slices.Contains(p.GetServices(), "payments") && strings.Contains(tmpl, "503")) || strings.Contains(tmpl, "card processor unavailable")
		inventory = inventory || strings.Contains(tmpl, "inventory backend timeout") || (slices.Contains(p.GetServices(), "inventory") && strings.Contains(tmpl, "504"))
	}
	if !payments {
		t.Errorf("no failure pattern for the flaky payments (503) among %d patterns", len(s.pats))
	}
	if !inventory {
		t.Errorf("no failure pattern for the slow inventory (timeouts) among %d patterns", len(s.pats))
	}

	// Flaky payments → retry or circuit breaker on payments, in force.
	if rs := s.applied("payments", bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER); len(rs) == 0 {
		t.Errorf("flaky payments: no retry or circuit breaker was put in force on payments")
	} else if ev := evidence(rs[len(rs)-1], "error_rate"); ev < 0.1 {
		t.Errorf("payments %s evidence error_rate %.3f, want the flaky share (≥ 0.1)", rs[len(rs)-1].GetKind(), ev)
	}

	// Slow inventory → a timeout on inventory that follows the slow release
	// (its evidence shows the added 250 ms).
	slow := false
	for _, r := range s.applied("inventory", bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT) {
		if evidence(r, "p999_ms") >= 250 || evidence(r, "p99_ms") >= 250 {
			slow = true
		}
	}
	if !slow {
		t.Errorf("slow inventory: no timeout put in force on inventory from the slow release's latency (p99.9 ≥ 250 ms)")
	}

	// Bad canary → the engine moved orders traffic away from v2.
	drained := false
	for _, r := range s.applied("orders", bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS) {
		if strings.HasPrefix(r.GetDirective().GetProvenance().GetAuthor(), "operator:") {
			continue // the operator's 80/20 canary split
		}
		for _, ep := range r.GetDirective().GetTrafficWeights().GetEndpoints() {
			if ep.GetVersion() == "v2" && ep.GetWeight() < 2000 {
				drained = true
			}
		}
	}
	if !drained {
		t.Errorf("bad canary: no traffic-weights directive moved orders traffic away from v2 (below its 20%% share)")
	}

	// The loop measured the effect.
	measured := 0
	for _, r := range s.recs {
		if r.EffectivenessScore != nil {
			measured++
		}
	}
	if measured == 0 {
		t.Errorf("no recommendation has an effectiveness score")
	}

	// The final report says the same.
	for _, want := range []string{"omnibridge demo report", "detected:", "changed:", "timeout inventory"} {
		if !strings.Contains(report, want) {
			t.Errorf("final report lacks %q", want)
		}
	}
	if !strings.Contains(report, "retry payments") && !strings.Contains(report, "circuit_breaker payments") {
		t.Errorf("final report lists no retry or circuit breaker on payments")
	}
	if strings.Contains(report, "outcomes measured: 0\n") {
		t.Errorf("final report measured no outcome")
	}
}

// testDashboard drives the live dashboard: the graph shows the demo
// services; applying a recommendation changes its state and the sidecars of
// its service acknowledge the new snapshot; rolling it back works; the tap
// shows live events.
func testDashboard(t *testing.T, base string, intel bridgev1connect.IntelligenceServiceClient) {
	// A recommendation waiting for a person: the demo enforces only the
	// protective and routing kinds, and this operator also keeps the
	// timeouts of payments for review, so some proposal waits even when the
	// machine is too busy for the load-dependent kinds.
	admin := bridgev1connect.NewAdminServiceClient(&http.Client{Timeout: 10 * time.Second}, base)
	if _, err := admin.SetMode(context.Background(), connect.NewRequest(&bridgev1.SetModeRequest{Service: "payments",
		Kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND, Reason: "e2e: review payments timeouts"})); err != nil {
		t.Fatalf("set mode: %v", err)
	}
	b := newBrowser(t)
	b.do(chromedp.Navigate(base + "/ui/"))
	for _, svc := range []string{"storefront", "orders", "inventory", "payments", "catalog"} {
		b.waitJS("graph node "+svc, fmt.Sprintf(`document.querySelectorAll('svg.graph g.node[data-service=%q]').length === 1`, svc), 60*time.Second)
	}
	b.screenshot("graph")

	var rec *bridgev1.Recommendation
	deadline := time.Now().Add(60 * time.Second)
	for rec == nil {
		r, err := intel.ListRecommendations(b.Ctx, connect.NewRequest(&bridgev1.ListRecommendationsRequest{
			States: []bridgev1.RecommendationState{bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED}}))
		if err == nil && len(r.Msg.GetRecommendations()) > 0 {
			rec = r.Msg.GetRecommendations()[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no proposed recommendation to apply within 60 s (err %v)", err)
		}
		time.Sleep(time.Second)
	}
	service := rec.GetDirective().GetScope().GetService()
	before := serviceVersion(t, intel, service)
	t.Logf("applying %s %s on %s from the dashboard (service at v%d)", rec.GetKind(), rec.GetId(), service, before)

	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="recommendations"]`)))
	card := fmt.Sprintf(`document.querySelector('[data-rec-id=%q]')`, rec.GetId())
	b.waitJS("the recommendation's card", card+` !== null`, 30*time.Second)
	// Clicked from JavaScript: the list re-renders while it polls, and a
	// click must land on the card in the page at that instant.
	b.do(chromedp.Evaluate[chromedp.Void](card + `.scrollIntoView(); ` + card + `.querySelector('button[data-action="apply"]').click()`))
	b.waitJS("enforced state", card+`?.querySelector('.rec-state')?.textContent === 'enforced'`, 30*time.Second)
	b.screenshot("recommendation-applied")
	applied := waitAcked(t, intel, service, before)
	t.Logf("sidecars of %s acknowledged v%d", service, applied)

	b.do(chromedp.Evaluate[chromedp.Void](card + `.scrollIntoView(); ` + card + `.querySelector('button[data-action="rollback"]').click()`))
	b.waitJS("rolled back state", card+`?.querySelector('.rec-state')?.textContent === 'rolled back'`, 30*time.Second)
	b.screenshot("recommendation-rolled-back")
	waitAcked(t, intel, service, applied)
	r, err := intel.GetRecommendation(b.Ctx, connect.NewRequest(&bridgev1.GetRecommendationRequest{Id: rec.GetId()}))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Msg.GetRecommendation().GetState(); got != bridgev1.RecommendationState_RECOMMENDATION_STATE_ROLLED_BACK {
		t.Errorf("after the dashboard's rollback the API says %s", got)
	}

	// Rollout: the sidecars' sync state.
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="rollout"]`)))
	b.waitJS("status table", `document.querySelectorAll('#status-table tbody tr').length >= 5`, 30*time.Second)
	b.screenshot("rollout")

	// Tap: live events stream in.
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="tap"]`)))
	b.waitJS("tap events", `document.querySelectorAll('#tap-list li[data-topic]').length >= 10`, 30*time.Second)
	b.screenshot("tap")

	if f := b.Failures(); len(f) > 0 {
		t.Errorf("page errors:\n%s", strings.Join(f, "\n"))
	}
}

// serviceVersion is the service's current directive snapshot version.
func serviceVersion(t *testing.T, intel bridgev1connect.IntelligenceServiceClient, service string) uint64 {
	t.Helper()
	r, err := intel.GetStatus(context.Background(), connect.NewRequest(&bridgev1.GetStatusRequest{Service: service}))
	if err != nil {
		t.Fatalf("get status: %v", err)
	}
	return r.Msg.GetVersions()[service]
}

// waitAcked waits until every connected sidecar of service acknowledged a
// version above after, and returns the lowest acknowledged one.
func waitAcked(t *testing.T, intel bridgev1connect.IntelligenceServiceClient, service string, after uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := intel.GetStatus(context.Background(), connect.NewRequest(&bridgev1.GetStatusRequest{Service: service}))
		if err == nil {
			low, n := uint64(0), 0
			for _, s := range r.Msg.GetSidecars() {
				if s.GetService() != service || !s.GetConnected() {
					continue
				}
				if n == 0 || s.GetAckedVersion() < low {
					low = s.GetAckedVersion()
				}
				n++
			}
			if n > 0 && low > after {
				return low
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sidecars of %s did not acknowledge a version above %d (err %v)", service, after, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
