package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/omninode/bridge/controlplane/analyze"
	"github.com/omninode/bridge/controlplane/directives"
	"github.com/omninode/bridge/controlplane/optimize"
	"github.com/omninode/bridge/controlplane/ui"
	"github.com/omninode/bridge/internal/bus"
	"golang.org/x/sync/errgroup"
)

// DevConfig configures `omnibridge dev`: one process with the embedded
// broker (unless Brokers), the control plane on embedded or given backends,
// the dashboard, and with Demo the demo mesh behind real sidecars.
type DevConfig struct {
	// Listen is the control plane's API and dashboard address; default
	// 127.0.0.1:8080. It must be loopback (the API is open).
	Listen string
	// DataDir persists the embedded broker and the demo sidecars' spools;
	// default os.UserCacheDir()/omnibridge/dev.
	DataDir string
	// Brokers, Postgres, Redis and Consul select real backends; empty ones
	// run embedded (non-durable, except the broker under DataDir).
	Brokers                 []string
	Postgres, Redis, Consul string
	// Demo runs the demo services, sidecars, traffic and faults.
	Demo bool
	// Duration, when positive, stops after this long and prints the final
	// report (with Demo).
	Duration time.Duration
	// TimeScale multiplies the demo's fault schedule and the loop's windows
	// (0.5 runs the story twice as fast); default 1.
	TimeScale float64
	// TrafficRate is the demo users' requests per second; default 40.
	TrafficRate float64
	// HotRate is the request rate of the demo's hot, healthy read path
	// (a cache warmer polling inventory), which the loop samples; default 120,
	// 0 keeps the default, negative disables it.
	HotRate float64
	// Out receives the start banner, the live summary and the report;
	// default os.Stdout.
	Out io.Writer
	// Logger receives the parts' logs; default warnings to stderr.
	Logger *slog.Logger
}

// DefaultDevConfig returns the defaults.
func DefaultDevConfig() DevConfig {
	return DevConfig{Listen: "127.0.0.1:8080", TimeScale: 1, TrafficRate: 40, HotRate: 120}
}

// Validate checks the configuration.
func (c DevConfig) Validate() error {
	if !IsLoopback(c.Listen) {
		return fmt.Errorf("dev: --listen %s must be a loopback address (the dev API is open)", c.Listen)
	}
	if c.TimeScale <= 0 || c.TimeScale > 10 {
		return fmt.Errorf("dev: time scale %v must be in (0, 10]", c.TimeScale)
	}
	if c.Duration < 0 {
		return errors.New("dev: duration must not be negative")
	}
	if c.TrafficRate <= 0 {
		return fmt.Errorf("dev: traffic rate %v must be positive", c.TrafficRate)
	}
	return nil
}

func (c DevConfig) withDefaults() (DevConfig, error) {
	d := DefaultDevConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.TimeScale == 0 {
		c.TimeScale = d.TimeScale
	}
	if c.TrafficRate == 0 {
		c.TrafficRate = d.TrafficRate
	}
	if c.HotRate == 0 {
		c.HotRate = d.HotRate
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if c.DataDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		c.DataDir = filepath.Join(base, "omnibridge", "dev")
	}
	return c, nil
}

// RunDev runs `omnibridge dev` until ctx ends (or Duration passes) and
// shuts everything down; it returns nil on a clean stop.
func RunDev(ctx context.Context, cfg DevConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// The demo's clock (Duration) and an interrupt end the demo first; the
	// control plane and the broker stop after it, so the final report can
	// still read the API.
	demoCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		demoCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	log := cfg.Logger
	var lines []string
	brokers := cfg.Brokers
	var broker *bus.Broker
	closeBroker := func() {}
	if len(brokers) == 0 {
		broker, err = bus.StartBroker(bus.BrokerConfig{Listen: "127.0.0.1:0", DataDir: filepath.Join(cfg.DataDir, "broker")})
		if err != nil {
			return fmt.Errorf("start embedded broker: %w", err)
		}
		var once sync.Once
		closeBroker = func() { once.Do(broker.Close) }
		defer closeBroker()
		brokers = broker.Addrs()
		lines = append(lines, fmt.Sprintf("  broker         %-28s embedded (kfake), persisted in %s", strings.Join(brokers, ","), filepath.Join(cfg.DataDir, "broker")))
	} else {
		lines = append(lines, fmt.Sprintf("  broker         %-28s external", strings.Join(brokers, ",")))
	}

	demoCtl := &demoControl{}
	ccfg := DefaultControlPlaneConfig()
	ccfg.Base.Bus = bus.Config{Brokers: brokers, ClientID: "omnibridge-dev"}
	ccfg.Base.Postgres, ccfg.Base.Redis, ccfg.Base.Consul = cfg.Postgres, cfg.Redis, cfg.Consul
	ccfg.Base.Listen, ccfg.Base.Logger = cfg.Listen, log
	ccfg.Base.BatchWait = 20 * time.Millisecond
	ccfg.Versions = demoCtl.version
	ccfg.Directives = func(c *directives.Config) {
		c.Poll, c.StatusFlush, c.Heartbeat = 500*time.Millisecond, 500*time.Millisecond, 5*time.Second
	}
	ccfg.Analyze = func(c *analyze.Config) { c.FlushInterval = 2 * time.Second }
	if cfg.Demo {
		ccfg.Optimize = func(c *optimize.Config) { demoLoop(c, cfg.TimeScale) }
	}
	cp, err := NewControlPlane(ctx, ccfg)
	if err != nil {
		return err
	}
	lines = append(lines,
		fmt.Sprintf("  control plane  %-28s APIs: IntelligenceService, AdminService, DirectiveService (Connect, gRPC, gRPC-Web)", cp.URL()),
		fmt.Sprintf("  dashboard      %s", cp.URL()+ui.Prefix),
		fmt.Sprintf("  metrics        %s/metrics", cp.URL()),
		"  API            open (loopback only, every caller is an admin)",
		backendLine("store", cfg.Postgres, "PostgreSQL", "embedded in-process, NOT durable"),
		backendLine("cache", cfg.Redis, "Redis", "embedded in-process, NOT durable"),
		backendLine("kv", cfg.Consul, "Consul", "embedded in-process, NOT durable, no service catalog"),
	)
	out := cfg.Out
	fmt.Fprintf(out, "omnibridge dev: running (data dir %s)\n%s\n", cfg.DataDir, strings.Join(lines, "\n"))
	if !cfg.Demo {
		fmt.Fprintf(out, "Point sidecars at it: omnibridge sidecar --brokers %s --control-plane %s --service NAME --upstream URL --spool-dir DIR\nPress Ctrl-C to stop.\n",
			strings.Join(brokers, ","), cp.URL())
	}

	g, gctx := errgroup.WithContext(runCtx)
	if broker != nil {
		g.Go(func() error { return broker.Run(gctx) })
	}
	g.Go(func() error { return cp.Run(gctx) })
	g.Go(func() error {
		defer stopRun()
		dctx, cancel := context.WithCancel(demoCtx)
		defer cancel()
		go func() { // a failing part ends the demo too
			<-gctx.Done()
			cancel()
		}()
		if cfg.Demo {
			return runDemo(dctx, cp, brokers, cfg, demoCtl)
		}
		<-dctx.Done()
		return nil
	})
	err = g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	closeBroker() // persists the broker's data
	fmt.Fprintln(out, "omnibridge dev: stopped")
	return nil
}

func backendLine(name, addr, kind, embedded string) string {
	if addr == "" {
		return fmt.Sprintf("  %-14s %s", name, embedded)
	}
	return fmt.Sprintf("  %-14s %s at %s", name, kind, addr)
}

// demoLoop tunes the optimizer so the demo shows the whole loop within about
// two minutes: short windows and cool-downs, few requests needed as evidence,
// and a timeout floor above the demo's healthy latencies.
func demoLoop(c *optimize.Config, scale float64) {
	d := func(v time.Duration) time.Duration { return time.Duration(float64(v) * scale) }
	c.Interval, c.Window, c.MeasureAfter = max(time.Second, d(2*time.Second)), d(20*time.Second), d(20*time.Second)
	c.MinRequests = 40
	c.TimeoutFloor = 300 * time.Millisecond
	for k, g := range c.Guardrails {
		g.Cooldown = d(10 * time.Second)
		c.Guardrails[k] = g
	}
}
