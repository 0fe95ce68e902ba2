package stats

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func exactQuantile(sorted []float64, q float64) float64 {
	// The lower q-quantile, as DDSketch defines rank: floor(q*(n-1)).
	return sorted[int(q*float64(len(sorted)-1))]
}

func TestSketchQuantilesWithinRelativeAccuracy(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 5; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := NewSeries(DefaultLayout())
		var xs []float64
		for i := 0; i < 20000; i++ {
			v := math.Exp(rng.NormFloat64()*1.2 + 3) // log-normal, ms
			xs = append(xs, v)
			s.Add(Sample{At: t0.Add(time.Duration(i) * time.Millisecond), LatencyMs: v, Weight: 1, TTFBMs: -1})
		}
		sort.Float64s(xs)
		sum := s.Window(t0.Add(time.Minute), 5*time.Minute)
		if sum.Requests != 20000 {
			t.Fatalf("requests %v", sum.Requests)
		}
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
			got, want := sum.Quantile(q), exactQuantile(xs, q)
			if rel := math.Abs(got-want) / want; rel > RelativeAccuracy {
				t.Errorf("seed %d q%.3f: sketch %.4f exact %.4f rel err %.4f > %.2f", seed, q, got, want, rel, RelativeAccuracy)
			}
		}
	}
}

func TestSampleWeightCounts(t *testing.T) {
	t.Parallel()
	s := NewSeries(DefaultLayout())
	s.Add(Sample{At: t0, LatencyMs: 10, Weight: 10, TTFBMs: -1})
	s.Add(Sample{At: t0, LatencyMs: 1000, Weight: 1, Failed: true, TTFBMs: -1})
	sum := s.Window(t0, time.Minute)
	if sum.Requests != 11 || sum.Errors != 1 {
		t.Fatalf("requests %v errors %v, want 11 and 1", sum.Requests, sum.Errors)
	}
	if p50 := sum.Quantile(0.5); math.Abs(p50-10)/10 > RelativeAccuracy {
		t.Fatalf("p50 %v, want ~10 (weighted)", p50)
	}
}

func TestReplicaMergeMatchesSingle(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 3))
	all, a, b := NewSeries(DefaultLayout()), NewSeries(DefaultLayout()), NewSeries(DefaultLayout())
	for i := 0; i < 5000; i++ {
		x := Sample{At: t0.Add(time.Duration(i) * 50 * time.Millisecond), LatencyMs: rng.ExpFloat64() * 40, Weight: 1 + float64(i%3), Failed: i%17 == 0, TTFBMs: 3}
		all.Add(x)
		if i%2 == 0 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	if err := a.Merge(b.Export()); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(5 * time.Minute)
	for _, w := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour} {
		x, y := all.Window(now, w), a.Window(now, w)
		if x.Requests != y.Requests || x.Errors != y.Errors || math.Abs(x.SumMs-y.SumMs) > 1e-6 {
			t.Fatalf("window %s: counts differ: %+v vs %+v", w, x.Requests, y.Requests)
		}
		for _, q := range []float64{0.5, 0.99} {
			if x.Quantile(q) != y.Quantile(q) {
				t.Fatalf("window %s q%v: single %v merged %v", w, q, x.Quantile(q), y.Quantile(q))
			}
		}
	}
}

func TestWindowsSlide(t *testing.T) {
	t.Parallel()
	s := NewSeries(DefaultLayout())
	for m := 0; m < 90; m++ {
		s.Add(Sample{At: t0.Add(time.Duration(m) * time.Minute), LatencyMs: 1, Weight: 1, TTFBMs: -1})
	}
	now := t0.Add(89*time.Minute + 30*time.Second)
	if got := s.Window(now, time.Minute).Requests; got != 2 {
		t.Errorf("1m window: %v requests, want 2 (current and previous bucket)", got)
	}
	if got := s.Window(now, 5*time.Minute).Requests; got != 6 {
		t.Errorf("5m window: %v, want 6", got)
	}
	if got := s.Window(now, time.Hour).Requests; got != 60 {
		t.Errorf("1h window: %v, want 60", got)
	}
	if got := s.Window(now, 24*time.Hour).Requests; got != 90 {
		t.Errorf("baseline: %v, want 90", got)
	}
}

func TestMannKendall(t *testing.T) {
	t.Parallel()
	tt := DefaultTrendTest()
	tests := []struct {
		name string
		xs   []float64
		want Trend
	}{
		{"rising steps", []float64{10, 11, 12, 13, 14, 15, 16, 17}, TrendRising},
		{"falling", []float64{20, 18, 17, 15, 14, 12, 11, 10}, TrendFalling},
		{"flat", []float64{10, 10, 10, 10, 10, 10, 10}, TrendStable},
		{"too few", []float64{1, 2, 3}, TrendUnknown},
		{"significant but tiny", []float64{100, 100.1, 100.2, 100.3, 100.4, 100.5, 100.6, 100.7}, TrendStable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tt.TestTrend(tc.xs); got.Trend != tc.want {
				t.Fatalf("trend %v (%+v), want %v", got.Trend, got, tc.want)
			}
		})
	}
	if s := SenSlope([]float64{1, 3, 5, 7}); s != 2 {
		t.Fatalf("sen slope %v, want 2", s)
	}
}

func TestAnomalyScore(t *testing.T) {
	t.Parallel()
	hist := []float64{10, 11, 9, 10, 12, 10, 9, 11}
	if s := AnomalyScore(10.5, hist); s > AnomalyThreshold {
		t.Fatalf("normal point scored %v", s)
	}
	if s := AnomalyScore(40, hist); s <= AnomalyThreshold {
		t.Fatalf("outlier scored %v", s)
	}
}
