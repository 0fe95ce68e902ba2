package mesh

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/demo"
	"golang.org/x/sync/errgroup"
)

// demoActor is who the demo's own changes are audited as.
const demoActor = "omnibridge-dev"

// demoControl is what the demo shares with the control plane's wiring: the
// version behind each upstream endpoint, known once the topology started.
type demoControl struct {
	mu       sync.Mutex
	versions map[string]string
}

func (d *demoControl) version(endpoint string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.versions[endpoint]
}

func (d *demoControl) setVersion(endpoint, version string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.versions == nil {
		d.versions = map[string]string{}
	}
	d.versions[endpoint] = version
}

// DemoModes are the optimizer's modes in the demo: the protective and
// routing kinds are enforced so the loop is visible, the rest wait for a
// person (the dashboard's Apply button).
func DemoModes() map[bridgev1.DirectiveKind]bridgev1.DirectiveMode {
	enf, rec := bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE, bridgev1.DirectiveMode_DIRECTIVE_MODE_RECOMMEND
	return map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{
		bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY:             enf,
		bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT:           enf,
		bridgev1.DirectiveKind_DIRECTIVE_KIND_TRAFFIC_WEIGHTS:   enf,
		bridgev1.DirectiveKind_DIRECTIVE_KIND_CIRCUIT_BREAKER:   enf,
		bridgev1.DirectiveKind_DIRECTIVE_KIND_RATE_LIMIT:        rec,
		bridgev1.DirectiveKind_DIRECTIVE_KIND_CONCURRENCY_LIMIT: rec,
		bridgev1.DirectiveKind_DIRECTIVE_KIND_RESPONSE_CACHE:    rec,
		bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING:    rec,
	}
}

// DemoSchedule is the dev demo's fault story, compressed so the loop's
// answers show within about two minutes at scale 1: payments turns flaky and
// then fails most requests (a breaker), inventory ships a slow release
// (timeouts follow), the orders v2 canary goes bad (traffic drained), the MCP
// inventory.check tool starts failing; later the faults clear.
func DemoSchedule(scale float64) demo.Schedule {
	s := demo.Schedule{Steps: []demo.Step{
		{At: 10 * time.Second, Name: "payments turns flaky (30% 503)", Set: func(f *demo.Faults) { f.SetPaymentsFlaky(0.3) }},
		{At: 18 * time.Second, Name: "inventory slow release (+250ms)", Set: func(f *demo.Faults) { f.SetInventorySlow(250 * time.Millisecond) }},
		{At: 24 * time.Second, Name: "orders v2 canary goes bad (50% 500)", Set: func(f *demo.Faults) { f.SetCanaryErrors(0.5) }},
		{At: 30 * time.Second, Name: "payments gets worse (65% 503)", Set: func(f *demo.Faults) { f.SetPaymentsFlaky(0.65) }},
		{At: 36 * time.Second, Name: "MCP inventory.check starts failing (25%)", Set: func(f *demo.Faults) { f.SetToolFailing(0.25) }},
		{At: 75 * time.Second, Name: "payments recovers", Set: func(f *demo.Faults) { f.SetPaymentsFlaky(0) }},
		{At: 85 * time.Second, Name: "inventory slow release rolled back", Set: func(f *demo.Faults) { f.SetInventorySlow(0) }},
		{At: 95 * time.Second, Name: "inventory.check recovers", Set: func(f *demo.Faults) { f.SetToolFailing(0) }},
	}}
	return s.Scaled(scale)
}

// runDemo starts the demo mesh behind real sidecars connected to cp, drives
// traffic and faults, renders the live summary every second and, when ctx
// ends, the final report.
func runDemo(ctx context.Context, cp *ControlPlane, brokers []string, cfg DevConfig, ctl *demoControl) error {
	start := time.Now()
	log := cfg.Logger
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for kind, mode := range DemoModes() {
		if err := cp.Engine.SetMode(ctx, "*", kind, mode, demoActor, "demo defaults: protective and routing changes enforced, the rest recommended"); err != nil {
			return fmt.Errorf("set demo modes: %w", err)
		}
	}
	sum := demo.NewSummary(cfg.Out)
	var notesMu sync.Mutex
	var notes []string
	note := func(msg string) {
		notesMu.Lock()
		notes = append(notes, fmt.Sprintf("%s %s", fmtSince(time.Since(start)), msg))
		if len(notes) > 20 {
			notes = notes[len(notes)-20:]
		}
		notesMu.Unlock()
		_ = sum.Note(time.Since(start), msg)
	}

	// The demo's sidecars start fresh each run: a snapshot persisted by an
	// earlier run would carry versions the new (embedded) control plane has
	// not reached yet.
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "sidecars")); err != nil {
		return fmt.Errorf("reset demo sidecar state: %w", err)
	}
	// Sidecars: one real sidecar per service, started by the topology.
	g, gctx := errgroup.WithContext(ctx)
	var scMu sync.Mutex
	sidecars := 0
	front := func(service string, ups []demo.Upstream) (demo.FrontEnd, error) {
		for _, u := range ups {
			ctl.setVersion(u.URL, u.Version)
		}
		sc := DefaultSidecarConfig()
		b := &sc.Base
		b.Service, b.Version, b.Upstream = service, ups[0].Version, ups[0].URL
		for _, u := range ups[1:] {
			sc.Upstreams = append(sc.Upstreams, u.URL)
		}
		b.Listen, b.Admin, b.Hooks = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		b.SpoolDir = filepath.Join(cfg.DataDir, "sidecars", service)
		b.Bus = &bus.Config{Brokers: brokers, ClientID: "omnibridge-dev-sidecar-" + service, Linger: 5 * time.Millisecond}
		b.ControlPlane = cp.URL()
		b.MCP = service == "catalog"
		b.Routes = demoRoutes[service]
		b.HealthInterval, b.DrainTimeout = 2*time.Second, 2*time.Second
		b.Logger = quiet
		sc.DirectiveBackoffMax = 2 * time.Second
		s, err := NewSidecar(sc)
		if err != nil {
			return demo.FrontEnd{}, fmt.Errorf("start sidecar for %s: %w", service, err)
		}
		g.Go(func() error { return s.Run(gctx) })
		scMu.Lock()
		sidecars++
		scMu.Unlock()
		return demo.FrontEnd{URL: "http://" + s.SC.ProxyAddr(), HooksURL: "http://" + s.HooksAddr()}, nil
	}
	faults := &demo.Faults{}
	dep, err := demo.Topology{Front: front, Faults: faults, CanaryWeight: 20, Logger: quiet}.Start(gctx)
	if err != nil {
		return fmt.Errorf("start demo services: %w", err)
	}
	g.Go(func() error { return dep.Wait() })
	fmt.Fprintf(cfg.Out, "  demo           %d services behind %d sidecars; traffic enters at %s (storefront), MCP at %s\n",
		len(demo.Services()), sidecars, dep.Entry, dep.MCP)

	// The operator's canary rollout: 80/20 between orders v1 and v2, as an
	// enforced directive through the engine and the directive server.
	if err := seedCanary(ctx, cp.Engine, dep); err != nil {
		return err
	}
	note("operator: orders traffic split 80/20 between v1 and the v2 canary")

	stats := &demo.TrafficStats{}
	g.Go(func() error {
		return demo.Traffic{Target: dep.Entry, Rate: cfg.TrafficRate, Stats: stats, Logger: quiet}.Run(gctx)
	})
	if cfg.HotRate > 0 {
		g.Go(func() error { return hotPath(gctx, dep.Fronts["inventory"]+"/inventory/sku-1001", cfg.HotRate) })
	}
	sched := DemoSchedule(cfg.TimeScale)
	sched.OnStep = func(st demo.Step) { note("fault: " + st.Name) }
	g.Go(func() error { return sched.Run(gctx, faults) })

	obs := newObserver(cp.URL())
	g.Go(func() error {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
			snap := obs.snapshot(gctx, time.Since(start), stats, faults)
			notesMu.Lock()
			snap.Recent = append([]string(nil), notes...)
			notesMu.Unlock()
			for _, c := range obs.newChanges() {
				note(c)
			}
			if err := sum.Render(snap); err != nil {
				log.Debug("render summary", "err", err)
			}
		}
	})
	<-ctx.Done()
	// The final report reads the API before the control plane stops: ctx is
	// done, so use a short context of its own.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	snap := obs.snapshot(rctx, time.Since(start), stats, faults)
	cancel()
	fmt.Fprint(cfg.Out, "\n"+demo.Report(snap))
	_ = g.Wait()
	return nil
}

// demoRoutes are the demo services' route templates (the heuristic would
// keep "sku-1001" as it is).
var demoRoutes = map[string][]string{
	"storefront": {"/api/products/{sku}", "/api/orders/{id}"},
	"inventory":  {"/inventory/reserve", "/inventory/{sku}"},
	"orders":     {"/orders/{id}"},
}

// seedCanary forces the 80/20 split of orders between v1 and v2.
func seedCanary(ctx context.Context, eng *optimize.Engine, dep *demo.Deployment) error {
	v1, v2 := dep.Instances["orders-v1"], dep.Instances["orders-v2"]
	d := &bridgev1.Directive{Scope: &bridgev1.Scope{Service: "orders"}, Spec: &bridgev1.Directive_TrafficWeights{
		TrafficWeights: &bridgev1.TrafficWeightsPolicy{Endpoints: []*bridgev1.WeightedEndpoint{
			{Endpoint: v1, Version: "v1", Weight: 8000}, {Endpoint: v2, Version: "v2", Weight: 2000}}}}}
	if _, _, err := eng.Force(ctx, d, optimize.RouteSnapshot{}, demoActor, "canary rollout: 20% of orders traffic to v2"); err != nil {
		return fmt.Errorf("seed the orders canary split: %w", err)
	}
	return nil
}

// hotPath polls one read route at rate: the demo's hot, healthy route.
func hotPath(ctx context.Context, url string, rate float64) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // too many in flight: skip a tick
		}
		wg.Go(func() {
			defer func() { <-sem }()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return
			}
			req.Header.Set("User-Agent", "omnibridge-demo-cache-warmer")
			if resp, err := client.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		})
	}
}

func fmtSince(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
