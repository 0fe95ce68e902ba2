package harness

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// TestSmoke runs every scenario end to end at tiny scale, as
// `make bench-smoke` does, and checks that files and numbers were produced.
// It asserts no timing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds helpers and starts nginx, HAProxy, brokers and PostgreSQL")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cfg := SmokeConfig()
	cfg.Repo = repo
	cfg.OutDir = t.TempDir()
	cfg.Stdout = io.Discard
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	if raceEnabled {
		// Reuse the race-instrumented build cache of `go test -race`.
		cfg.BuildFlags = []string{"-race"}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := CheckSmoke(rep, cfg); err != nil {
		t.Fatalf("smoke check: %v", err)
	}
	for name, why := range rep.Proxy.Skipped {
		t.Logf("target %s skipped: %s", name, why)
	}
}

// TestParseBench checks the go test -bench parser on a benchstat-style sample.
func TestParseBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/omninode/bridge/internal/bus
BenchmarkEncode/A-2   	  100000	      7714 ns/op	  68.97 MB/s	    1794 B/op	      28 allocs/op
BenchmarkEncode/A-2   	  100000	      7000 ns/op	  68.97 MB/s	    1794 B/op	      28 allocs/op
BenchmarkEncode/A-2   	  100000	      9000 ns/op	  68.97 MB/s	    1794 B/op	      28 allocs/op
pkg: github.com/omninode/bridge/sidecar/redact
BenchmarkRedact-2   	  100000	      500 ns/op	    16 B/op	      1 allocs/op
PASS
`
	got := parseBench(out)
	if len(got) != 2 {
		t.Fatalf("parsed %d benchmarks, want 2: %+v", len(got), got)
	}
	if got[0].Name != "BenchmarkEncode/A-2" || got[0].NsPerOp.Median != 7714 || got[0].NsPerOp.Min != 7000 || got[0].NsPerOp.Max != 9000 || got[0].AllocsPerOp != 28 {
		t.Errorf("first = %+v", got[0])
	}
	if got[1].Pkg != "github.com/omninode/bridge/sidecar/redact" || got[1].BytesPerOp != 16 {
		t.Errorf("second = %+v", got[1])
	}
}

// TestSummariseProxy checks the pairing with direct, the dropping of rounds
// where the generator fell behind, and the ratios to the best peer.
func TestSummariseProxy(t *testing.T) {
	run := func(round int, target string, p99 float64, behind bool, cpu float64) ProxyRun {
		return ProxyRun{Round: round, Proto: "h1", Body: 1024, Rate: 1000, Target: target, P50ms: p99 / 4, P99ms: p99, P999ms: p99 * 2, Behind: behind, CPUPer1k: cpu, RSSKB: 10240}
	}
	pr := &ProxyResults{Runs: []ProxyRun{
		run(1, TargetDirect, 1.0, false, 0.07), run(1, TargetNginx, 1.5, false, 0.02), run(1, TargetHAProxy, 2.0, false, 0.03),
		run(2, TargetDirect, 1.2, false, 0.07), run(2, TargetNginx, 1.6, false, 0.02), run(2, TargetHAProxy, 9.0, true, 0.03),
		run(3, TargetDirect, 1.1, false, 0.07), run(3, TargetNginx, 1.4, false, 0.02), run(3, TargetHAProxy, 2.4, false, 0.03),
	}, Sat: []SatRun{{1, TargetNginx, 9000, ""}, {1, TargetHAProxy, 6000, ""}}, PeakRSSKB: map[string]int64{}}
	sums, sats := summariseProxy(pr, 3)
	by := map[string]ProxySummary{}
	for _, s := range sums {
		by[s.Target] = s
	}
	ha := by[TargetHAProxy]
	if ha.Used != 2 || ha.Rounds != 3 {
		t.Errorf("haproxy rounds used %d/%d, want 2/3", ha.Used, ha.Rounds)
	}
	if m := ha.AddP99ms.Median; m < 1.149 || m > 1.151 { // (1.0 and 1.3 added) -> median 1.15
		t.Errorf("haproxy added p99 median %v, want 1.15", m)
	}
	ng := by[TargetNginx]
	if ng.AddP99Ratio != 1 || ng.CPURatio != 1 {
		t.Errorf("nginx ratios %v %v, want 1 (the best)", ng.AddP99Ratio, ng.CPURatio)
	}
	if r := ha.CPURatio; r < 1.49 || r > 1.51 {
		t.Errorf("haproxy CPU ratio %v, want 1.5", r)
	}
	if by[TargetDirect].CPURatio != 0 {
		t.Errorf("direct has a ratio to proxies")
	}
	if len(sats) != 2 || sats[1].Ratio < 0.66 || sats[1].Ratio > 0.67 {
		t.Errorf("saturation summary %+v", sats)
	}
}
