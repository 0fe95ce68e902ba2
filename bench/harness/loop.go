package harness

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/omninode/bridge/controlplane/directives"
)

// LoopResults are the closed-loop figures: a critical signal turned into a
// directive at a sidecar, and a directive fanned out to many stream clients,
// measured with controlplane/directives.FanOutBench (a real server on an h2c
// loopback listener, simulated sidecars on real HTTP/2 streams).
type LoopResults struct {
	Sidecars int `json:"sidecars"`
	Rounds   int `json:"rounds"`
	// UnderLoad says whether the pipeline's routine load ran meanwhile.
	UnderLoad bool    `json:"under_load"`
	ConnectMs float64 `json:"connect_ms"`
	// Critical and FanOut are spreads over rounds in ms, plus p99.
	Critical      Spread  `json:"critical_ms"`
	CriticalP99ms float64 `json:"critical_p99_ms"`
	FanOut        Spread  `json:"fanout_ms"`
	FanOutP99ms   float64 `json:"fanout_p99_ms"`
	Err           string  `json:"error,omitempty"`
}

// runLoop runs the fan-out and critical-path bench of the directive engine.
func runLoop(ctx context.Context, cfg Config, underLoad bool) *LoopResults {
	res := &LoopResults{Sidecars: cfg.LoopSidecars, Rounds: cfg.LoopRounds, UnderLoad: underLoad}
	fr, err := directives.FanOutBench(ctx, cfg.LoopSidecars, cfg.LoopRounds, false)
	if err != nil {
		res.Err = fmt.Sprintf("directives.FanOutBench: %v", err)
		return res
	}
	res.ConnectMs = ms(fr.Connect)
	res.Critical, res.CriticalP99ms = durSpread(fr.Critical), p99(fr.Critical)
	res.FanOut, res.FanOutP99ms = durSpread(fr.FanOut), p99(fr.FanOut)
	return res
}

// p99 is the nearest-rank 99th percentile in ms.
func p99(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return ms(percentile(s, 0.99))
}

func durSpread(ds []time.Duration) Spread {
	vs := make([]float64, len(ds))
	for i, d := range ds {
		vs[i] = ms(d)
	}
	return spreadOf(vs)
}
