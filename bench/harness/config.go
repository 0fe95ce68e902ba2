package harness

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"
)

// Config says what a run measures and how hard.
type Config struct {
	// Repo is the repository root (holding go.mod); the harness builds from it.
	Repo string
	// OutDir receives the results; default Repo/bench/results/<UTC timestamp>.
	OutDir string
	// Smoke marks a tiny end-to-end run that checks the harness, not speed.
	Smoke bool
	// Scenarios limits the run to some of "proxy", "pipeline", "loop",
	// "micro" (empty: all).
	Scenarios []string

	// Rounds is how many interleaved rounds every proxy cell runs.
	Rounds int
	// Duration and Warmup of each measured load run.
	Duration, Warmup time.Duration
	// Rates (req/s), Bodies (bytes) and Protocols ("h1", "grpc") span the cells.
	Rates     []int
	Bodies    []int
	Protocols []string
	// Targets limits the proxy targets (empty: all).
	Targets []string

	// Saturation search: from SatStart, times SatStep each step, up to SatMax
	// req/s; a step passes with p99 under SatP99 and under 1% errors.
	SatStart, SatMax int
	SatStep          float64
	SatDuration      time.Duration
	SatP99           time.Duration
	SatRounds        int

	// Pin puts the load generator (this process) and the broker on LoadCPU,
	// and the upstream and proxies on ProxyCPU with GOMAXPROCS=1.
	Pin               bool
	LoadCPU, ProxyCPU int

	// Profile saves CPU and allocation profiles of the sidecar under load.
	Profile bool

	// PipelineEvents is how many events the throughput runs push; PipelineRounds repeats them.
	PipelineEvents int
	PipelineRounds int
	// LatencyRate (events/s) and LatencyDuration of the emitted-to-stored latency run.
	LatencyRate     int
	LatencyDuration time.Duration

	// LoopSidecars simulated sidecars receive LoopRounds directive fan-outs
	// and critical-path trips.
	LoopSidecars, LoopRounds int

	// MicroPkgs are the packages whose testing.B benchmarks run; MicroBenchtime
	// and MicroCount are passed to go test (-benchtime, -count).
	MicroPkgs      []string
	MicroBenchtime string
	MicroCount     int

	// BuildFlags are passed to go build and go test (the smoke test adds
	// -race when it runs under -race, to reuse the test's build cache).
	BuildFlags []string

	// Stdout receives the table; Logger the progress.
	Stdout io.Writer
	Logger *slog.Logger
}

// DefaultConfig is the full `make bench` run (about 20 minutes).
func DefaultConfig() Config {
	return Config{
		Rounds:          3,
		Duration:        4 * time.Second,
		Warmup:          time.Second,
		Rates:           []int{1000, 3000},
		Bodies:          []int{1 << 10, 64 << 10},
		Protocols:       []string{"h1", "grpc"},
		SatStart:        1000,
		SatMax:          40000,
		SatStep:         1.4,
		SatDuration:     2 * time.Second,
		SatP99:          10 * time.Millisecond,
		SatRounds:       3,
		Pin:             true,
		LoadCPU:         0,
		ProxyCPU:        1,
		PipelineEvents:  100000,
		PipelineRounds:  3,
		LatencyRate:     25000,
		LatencyDuration: 4 * time.Second,
		LoopSidecars:    1000,
		LoopRounds:      30,
		MicroPkgs:       []string{"./internal/bus", "./sidecar/...", "./controlplane/..."},
		MicroBenchtime:  "1s",
		MicroCount:      5,
		Stdout:          os.Stdout,
	}
}

// SmokeConfig runs every scenario once at tiny scale (a few seconds).
func SmokeConfig() Config {
	c := DefaultConfig()
	c.Smoke = true
	c.Rounds = 1
	c.Duration = 150 * time.Millisecond
	c.Warmup = 50 * time.Millisecond
	c.Rates = []int{200}
	c.Bodies = []int{1 << 10}
	c.SatStart, c.SatMax, c.SatStep = 200, 400, 2
	c.SatDuration = 150 * time.Millisecond
	c.SatP99 = time.Second
	c.SatRounds = 1
	c.Pin = false
	c.PipelineEvents = 2000
	c.PipelineRounds = 1
	c.LatencyRate = 2000
	c.LatencyDuration = 300 * time.Millisecond
	c.LoopSidecars, c.LoopRounds = 20, 2
	c.MicroPkgs = []string{"./internal/bus"}
	c.MicroBenchtime = "1x"
	c.MicroCount = 1
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Repo == "":
		return errors.New("bench config: Repo is required")
	case c.Rounds < 1:
		return fmt.Errorf("bench config: rounds %d < 1", c.Rounds)
	case c.Duration <= 0:
		return errors.New("bench config: duration must be positive")
	case len(c.Rates) == 0 || len(c.Bodies) == 0 || len(c.Protocols) == 0:
		return errors.New("bench config: rates, bodies and protocols must not be empty")
	case c.SatStep <= 1 || c.SatStart < 1 || c.SatMax < c.SatStart:
		return errors.New("bench config: saturation search needs start >= 1, max >= start, step > 1")
	case c.LoopSidecars < 1 || c.LoopRounds < 1:
		return errors.New("bench config: loop sidecars and rounds must be positive")
	case c.PipelineEvents < 1 || c.PipelineRounds < 1 || c.LatencyRate < 1:
		return errors.New("bench config: pipeline events, rounds and latency rate must be positive")
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(allScenarios, s) {
			return fmt.Errorf("bench config: scenario %q (want one of %v)", s, allScenarios)
		}
	}
	for _, r := range c.Rates {
		if r < 1 {
			return fmt.Errorf("bench config: rate %d < 1", r)
		}
	}
	for _, p := range c.Protocols {
		if p != "h1" && p != "grpc" {
			return fmt.Errorf("bench config: protocol %q (want h1 or grpc)", p)
		}
	}
	return nil
}

var allScenarios = []string{"proxy", "pipeline", "loop", "micro"}

// wants reports whether scenario s runs.
func (c Config) wants(s string) bool { return len(c.Scenarios) == 0 || slices.Contains(c.Scenarios, s) }

func (c Config) withDefaults() Config {
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if c.OutDir == "" {
		c.OutDir = c.Repo + "/bench/results/" + time.Now().UTC().Format("20060102T150405Z")
	}
	return c
}
