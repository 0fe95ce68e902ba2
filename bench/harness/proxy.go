package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ProxyRun is one measured load run of one target in one cell and round.
type ProxyRun struct {
	Round    int     `json:"round"`
	Proto    string  `json:"proto"`
	Body     int     `json:"body"`
	Rate     int     `json:"rate"`
	Target   string  `json:"target"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	P999ms   float64 `json:"p999_ms"`
	MaxMs    float64 `json:"max_ms"`
	Requests int     `json:"requests"`
	ErrRate  float64 `json:"error_rate"`
	FirstErr string  `json:"first_error,omitempty"`
	// Generator lateness: p99 and max (ms), share of sends later than 1 ms.
	LateP99ms float64 `json:"late_p99_ms"`
	LateMaxMs float64 `json:"late_max_ms"`
	LateFrac  float64 `json:"late_frac"`
	Behind    bool    `json:"generator_behind"`
	// CPU seconds per 1,000 requests of the proxy's process tree (the
	// upstream's for direct), and its resident memory after the run.
	CPUPer1k float64 `json:"cpu_s_per_1k"`
	RSSKB    int64   `json:"rss_kb"`
}

// SatRun is the result of one saturation search.
type SatRun struct {
	Round   int    `json:"round"`
	Target  string `json:"target"`
	MaxRate int    `json:"max_rate"`
	// StopReason says why the next step failed (p99, errors, generator behind, limit).
	StopReason string `json:"stop_reason"`
}

// ProxyResults are the proxy-overhead measurements.
type ProxyResults struct {
	Pinning string            `json:"pinning"`
	Skipped map[string]string `json:"skipped"`
	Runs    []ProxyRun        `json:"runs"`
	Sat     []SatRun          `json:"saturation"`
	// PeakRSSKB is VmHWM of each target's process tree at the end.
	PeakRSSKB map[string]int64 `json:"peak_rss_kb"`
	Profiles  []string         `json:"profiles,omitempty"`
	ProfNote  string           `json:"profile_note,omitempty"`
}

type cell struct {
	proto string
	body  int
	rate  int
}

func (c cell) String() string { return fmt.Sprintf("%s %s @%d/s", c.proto, sizeName(c.body), c.rate) }

func sizeName(b int) string {
	if b >= 1<<10 && b%(1<<10) == 0 {
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%dB", b)
}

// runProxy measures every target in every cell, interleaved round by round.
func runProxy(ctx context.Context, cfg Config, bins binaries, tmp string) (*ProxyResults, error) {
	log := cfg.Logger
	res := &ProxyResults{Skipped: map[string]string{}, PeakRSSKB: map[string]int64{}}
	if cfg.Pin {
		if err := pinSelf(cfg.LoadCPU); err != nil {
			return nil, err
		}
		res.Pinning = fmt.Sprintf("load generator and broker on CPU %d; upstream and proxy on CPU %d (Go processes GOMAXPROCS=1; nginx 1 worker, HAProxy nbthread 1)", cfg.LoadCPU, cfg.ProxyCPU)
	} else {
		res.Pinning = "not pinned (smoke run)"
	}
	env, err := startProxyEnv(ctx, cfg, bins, tmp)
	if err != nil {
		return nil, err
	}
	defer env.close()
	var targets []*target
	for _, t := range env.targets {
		if len(cfg.Targets) > 0 && !slices.Contains(cfg.Targets, t.name) {
			continue
		}
		if !t.measured() {
			res.Skipped[t.name] = t.skip
			log.Warn("target skipped", "target", t.name, "reason", t.skip)
			continue
		}
		targets = append(targets, t)
	}
	var cells []cell
	for _, p := range cfg.Protocols {
		for _, b := range cfg.Bodies {
			for _, r := range cfg.Rates {
				cells = append(cells, cell{p, b, r})
			}
		}
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, c := range cells {
			// Rotate the order each round so no target always runs first.
			order := slices.Clone(targets)
			if k := len(order); k > 0 {
				off := (round - 1) % k
				order = append(order[off:], order[:off]...)
			}
			for _, t := range order {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				run := measureCell(ctx, cfg, env, t, c, round)
				res.Runs = append(res.Runs, run)
				log.Info("proxy run", "round", round, "cell", c.String(), "target", t.name,
					"p50_ms", fmt.Sprintf("%.3f", run.P50ms), "p99_ms", fmt.Sprintf("%.3f", run.P99ms),
					"err", run.ErrRate, "behind", run.Behind, "cpu_s_per_1k", fmt.Sprintf("%.4f", run.CPUPer1k))
			}
		}
	}
	// Saturation: HTTP/1.1 with the first body size.
	for round := 1; round <= cfg.SatRounds; round++ {
		for _, t := range targets {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			s := saturate(ctx, cfg, t, round)
			res.Sat = append(res.Sat, s)
			log.Info("saturation", "round", round, "target", t.name, "max_rate", s.MaxRate, "stop", s.StopReason)
		}
	}
	for _, t := range targets {
		pid := env.upstream.pid()
		if t.proc != nil {
			pid = t.proc.pid()
		}
		res.PeakRSSKB[t.name], _ = memKB(pid)
	}
	if cfg.Profile {
		profileSidecar(ctx, cfg, targets, res)
	}
	return res, nil
}

// profileSidecar runs one extra, unmeasured load run against the sidecar with
// emission on (HTTP/1.1, first body size, top rate) while fetching its CPU
// and then allocation profiles.
func profileSidecar(ctx context.Context, cfg Config, targets []*target, res *ProxyResults) {
	i := slices.IndexFunc(targets, func(t *target) bool { return t.name == TargetSidecarEmit })
	if i < 0 {
		res.ProfNote = "the sidecar with emission on was not measured: nothing profiled"
		return
	}
	t := targets[i]
	spec := loadSpec{URL: t.h1URL, Rate: slices.Max(cfg.Rates), Duration: max(cfg.Duration, 2*time.Second), Warmup: cfg.Warmup, Body: cfg.Bodies[0]}
	done := make(chan string, 1)
	go func() {
		time.Sleep(spec.Warmup)
		done <- captureProfiles(ctx, cfg, t, spec.Duration-time.Second/2)
	}()
	lr := runLoad(ctx, spec)
	if note := <-done; note != "" {
		res.ProfNote = note
		return
	}
	res.Profiles = append(res.Profiles, "sidecar-cpu.pprof", "sidecar-allocs.pprof")
	res.ProfNote = fmt.Sprintf("profiled an extra unmeasured run: sidecar-emit, HTTP/1.1 %s at %d req/s for %s (p99 %.2f ms)",
		sizeName(spec.Body), spec.Rate, spec.Duration, ms(lr.P99))
}

func measureCell(ctx context.Context, cfg Config, env *proxyEnv, t *target, c cell, round int) ProxyRun {
	url := t.h1URL
	if c.proto == "grpc" {
		url = t.grpcURL
	}
	pid := env.upstream.pid()
	if t.proc != nil {
		pid = t.proc.pid()
	}
	spec := loadSpec{URL: url, GRPC: c.proto == "grpc", Rate: c.rate, Duration: cfg.Duration, Warmup: cfg.Warmup, Body: c.body}
	// The CPU window covers the measured phase only, after the warm-up on
	// the same connections.
	var cpu0 float64
	spec.OnMeasure = func() { cpu0 = cpuSeconds(pid) }
	lr := runLoad(ctx, spec)
	cpu1 := cpuSeconds(pid)
	_, rss := memKB(pid)
	run := ProxyRun{
		Round: round, Proto: c.proto, Body: c.body, Rate: c.rate, Target: t.name,
		P50ms: ms(lr.P50), P99ms: ms(lr.P99), P999ms: ms(lr.P999), MaxMs: ms(lr.Max),
		Requests: lr.Scheduled, ErrRate: lr.ErrorRate(), FirstErr: lr.FirstErr,
		LateP99ms: ms(lr.LateP99), LateMaxMs: ms(lr.LateMax), LateFrac: lr.LateFrac, Behind: lr.Behind(),
		RSSKB: rss,
	}
	if lr.OK > 0 {
		run.CPUPer1k = (cpu1 - cpu0) / float64(lr.OK) * 1000
	}
	return run
}

// saturate raises the rate step by step until p99 exceeds the bound, errors
// reach 1% or the generator falls behind; the last passing rate is the max.
func saturate(ctx context.Context, cfg Config, t *target, round int) SatRun {
	s := SatRun{Round: round, Target: t.name, StopReason: fmt.Sprintf("reached the search limit %d/s", cfg.SatMax)}
	for rate := float64(cfg.SatStart); int(rate) <= cfg.SatMax; rate *= cfg.SatStep {
		r := int(rate)
		lr := runLoad(ctx, loadSpec{URL: t.h1URL, Rate: r, Duration: cfg.SatDuration, Warmup: cfg.SatDuration / 4, Body: cfg.Bodies[0], Timeout: time.Second})
		switch {
		case lr.ErrorRate() >= 0.01:
			s.StopReason = fmt.Sprintf("%d/s: %.1f%% errors (%s)", r, 100*lr.ErrorRate(), lr.FirstErr)
		case lr.P99 > cfg.SatP99:
			s.StopReason = fmt.Sprintf("%d/s: p99 %.1f ms > %s", r, ms(lr.P99), cfg.SatP99)
		case lr.Behind():
			s.StopReason = fmt.Sprintf("%d/s: load generator behind (%.0f%% of sends >1 ms late): a bound of the generator, not the target", r, 100*lr.LateFrac)
		default:
			s.MaxRate = r
			continue
		}
		return s
	}
	return s
}

// captureProfiles fetches a CPU profile over the run and then the allocation
// profile from the sidecar's admin /debug/pprof. It returns a note on failure.
func captureProfiles(ctx context.Context, cfg Config, t *target, d time.Duration) string {
	secs := int(d / time.Second)
	if secs < 1 {
		secs = 1
	}
	get := func(path, file string, timeout time.Duration) error {
		c := &http.Client{Timeout: timeout}
		resp, err := c.Get("http://" + t.pprof + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		f, err := os.Create(filepath.Join(cfg.OutDir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}
	if err := get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), "sidecar-cpu.pprof", d+10*time.Second); err != nil {
		return "the sidecar serves no /debug/pprof (no --pprof flag, and not on its admin address: " + err.Error() + "): no profile saved"
	}
	if err := get("/debug/pprof/allocs", "sidecar-allocs.pprof", 10*time.Second); err != nil {
		return "allocation profile failed: " + err.Error()
	}
	return ""
}
