package harness

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Run builds the helpers, runs every scenario and writes the report. A
// scenario that cannot run is recorded (skipped with its reason, or as an
// error in the report); Run fails only when nothing sensible can be written.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create results dir: %w", err)
	}
	tmp, err := os.MkdirTemp("", "omnibench-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	log := cfg.Logger

	r := &Report{Started: time.Now(), Commit: gitCommit(cfg.Repo), Machine: describeMachine(), Smoke: cfg.Smoke,
		Rounds: cfg.Rounds, Duration: cfg.Duration.String(), OutDir: cfg.OutDir}
	log.Info("building helpers", "dir", tmp)
	bins, err := buildBinaries(ctx, cfg.Repo, tmp, cfg.BuildFlags)
	if err != nil {
		return nil, err
	}
	if bins.sidecarErr != "" {
		log.Warn("sidecar targets will be skipped", "reason", bins.sidecarErr)
	} else if cfg.Profile && bins.flagKind("pprof") == "" {
		if bins.pprofOmni, err = buildPprofOmnibridge(ctx, cfg.Repo, tmp, cfg.BuildFlags); err != nil {
			log.Warn("no profiling build of omnibridge; profiles will be missing", "err", err)
		}
	}

	if cfg.wants("proxy") {
		if r.Proxy, err = runProxy(ctx, cfg, bins, tmp); err != nil {
			r.Errors = append(r.Errors, "proxy: "+err.Error())
		}
		r.ProxySummary, r.Saturation = summariseProxy(r.Proxy, cfg.Rounds)
	}
	if cfg.Pin {
		// The remaining scenarios use the whole machine.
		_ = pinSelf(-1)
	}
	if ctx.Err() == nil && cfg.wants("pipeline") {
		// The closed loop runs alongside the pipeline's latency pass, so the
		// critical path is measured while routine load runs.
		var during func(context.Context)
		if cfg.wants("loop") {
			during = func(ctx context.Context) {
				log.Info("closed loop", "sidecars", cfg.LoopSidecars, "rounds", cfg.LoopRounds)
				r.Loop = runLoop(ctx, cfg, true)
			}
		}
		if r.Pipeline, err = runPipeline(ctx, cfg, bins, tmp, during); err != nil {
			r.Errors = append(r.Errors, "pipeline: "+err.Error())
		}
		r.PipeSummary = summarisePipe(r.Pipeline)
	}
	if ctx.Err() == nil && r.Loop == nil && cfg.wants("loop") {
		r.Loop = runLoop(ctx, cfg, false)
	}
	if r.Loop != nil && r.Loop.Err != "" {
		r.Errors = append(r.Errors, "closed loop: "+r.Loop.Err)
	}
	if ctx.Err() == nil && cfg.wants("micro") {
		log.Info("micro-benchmarks", "pkgs", cfg.MicroPkgs)
		r.Micro = runMicro(ctx, cfg)
	}
	r.Finished = time.Now()
	if err := r.write(cfg); err != nil {
		return r, err
	}
	return r, ctx.Err()
}

func summarisePipe(p *PipelineResults) *PipeSummary {
	if p == nil {
		return nil
	}
	var a, b, c, c1, d, e []float64
	for _, r := range p.Rounds {
		a, b = append(a, r.ProduceEPS), append(b, r.BusEPS)
		if r.StoredEPS > 0 {
			c, c1 = append(c, r.StoreRowsPS), append(c1, r.StoreRows1PS)
			d, e = append(d, r.StoredEPS), append(e, r.AnalyzedEPS)
		}
	}
	return &PipeSummary{ProduceEPS: spreadOf(a), BusEPS: spreadOf(b), StoreRowsPS: spreadOf(c), StoreRows1PS: spreadOf(c1),
		StoredEPS: spreadOf(d), AnalyzedEPS: spreadOf(e)}
}

// cpuList renders a taskset CPU list: one CPU, or all CPUs for -1.
func cpuList(cpu int) string {
	if cpu < 0 {
		return "0-" + strconv.Itoa(max(0, numCPU()-1))
	}
	return strconv.Itoa(cpu)
}
