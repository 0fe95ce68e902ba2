// Command benchrun runs the benchmark harness: `make bench` (full run) and
// `make bench-smoke` (tiny end-to-end check of the harness). See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/omninode/bridge/bench/harness"
)

func main() {
	smoke := flag.Bool("smoke", false, "tiny end-to-end run that checks the harness (no timing is asserted)")
	profile := flag.Bool("profile", os.Getenv("PROFILE") == "1", "save CPU and allocation profiles of the sidecar under load (PROFILE=1)")
	repo := flag.String("repo", ".", "repository root")
	out := flag.String("out", "", "results directory (default bench/results/<timestamp>)")
	rounds := flag.Int("rounds", 0, "interleaved rounds (0: the mode's default)")
	dur := flag.Duration("duration", 0, "measured duration of each load run (0: the mode's default)")
	rates := flag.String("rates", "", "comma-separated request rates (default 1000,3000)")
	bodies := flag.String("bodies", "", "comma-separated body sizes in bytes (default 1024,65536)")
	targets := flag.String("targets", "", "comma-separated targets: direct,sidecar-emit,sidecar-noemit,nginx,haproxy (default all)")
	scenarios := flag.String("scenarios", "", "comma-separated scenarios: proxy,pipeline,loop,micro (default all)")
	noPin := flag.Bool("no-pin", false, "do not pin the load generator and the proxies to separate CPUs")
	flag.Parse()

	cfg := harness.DefaultConfig()
	if *smoke {
		cfg = harness.SmokeConfig()
	}
	cfg.Repo, cfg.OutDir, cfg.Profile = *repo, *out, *profile
	if *rounds > 0 {
		cfg.Rounds = *rounds
		cfg.SatRounds = min(cfg.SatRounds, *rounds)
		cfg.PipelineRounds = min(cfg.PipelineRounds, *rounds)
	}
	if *dur > 0 {
		cfg.Duration = *dur
	}
	if *rates != "" {
		cfg.Rates = nil
		for _, s := range strings.Split(*rates, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				fmt.Fprintf(os.Stderr, "benchrun: bad rate %q\n", s)
				os.Exit(2)
			}
			cfg.Rates = append(cfg.Rates, r)
		}
	}
	if *bodies != "" {
		cfg.Bodies = nil
		for _, s := range strings.Split(*bodies, ",") {
			b, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				fmt.Fprintf(os.Stderr, "benchrun: bad body size %q\n", s)
				os.Exit(2)
			}
			cfg.Bodies = append(cfg.Bodies, b)
		}
	}
	if *targets != "" {
		cfg.Targets = strings.Split(*targets, ",")
	}
	if *scenarios != "" {
		cfg.Scenarios = strings.Split(*scenarios, ",")
	}
	if *noPin {
		cfg.Pin = false
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := harness.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "benchrun: done in %s (%d scenario errors)\n", time.Since(start).Round(time.Second), len(rep.Errors))
	if *smoke {
		if err := harness.CheckSmoke(rep, cfg); err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: smoke check failed: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "benchrun: smoke check passed")
	}
}
