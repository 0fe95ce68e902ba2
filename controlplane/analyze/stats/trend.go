package stats

import (
	"math"
	"sort"
)

// Trend is the direction of a series.
type Trend int

// Trend values.
const (
	// TrendUnknown: too few points to test.
	TrendUnknown Trend = iota
	// TrendStable: no significant monotonic trend, or one too small to matter.
	TrendStable
	// TrendFalling: a significant decrease.
	TrendFalling
	// TrendRising: a significant increase.
	TrendRising
)

// TrendTest configures TestTrend.
type TrendTest struct {
	// MinPoints is the fewest points the test runs on. Default 6.
	MinPoints int
	// Z is the two-sided critical value of the Mann-Kendall statistic; 1.96
	// is 95% significance.
	Z float64
	// MinChange is the smallest relative change over the tested span (Sen's
	// slope times the span, divided by the median) that counts as a trend;
	// it keeps tiny but significant drifts from raising alarms. Default 0.1.
	MinChange float64
}

// DefaultTrendTest is 6 points, 95% significance and a 10% change.
func DefaultTrendTest() TrendTest { return TrendTest{MinPoints: 6, Z: 1.96, MinChange: 0.1} }

// TrendResult carries the test's figures, for evidence.
type TrendResult struct {
	Trend Trend
	// S is the Mann-Kendall S statistic; Zscore its normal approximation.
	S      int
	Zscore float64
	// Slope is Sen's slope, per point.
	Slope float64
	// Change is Slope*(n-1) divided by the median of the points.
	Change float64
	N      int
}

// TestTrend runs the Mann-Kendall test (with the tie correction of the
// variance) and Sen's slope on xs, in time order.
func (t TrendTest) TestTrend(xs []float64) TrendResult {
	n := len(xs)
	res := TrendResult{N: n}
	if n < t.MinPoints || n < 3 {
		return res
	}
	s := 0
	for i := 0; i < n-1; i++ {
		for j := i + 1; j < n; j++ {
			switch d := xs[j] - xs[i]; {
			case d > 0:
				s++
			case d < 0:
				s--
			}
		}
	}
	// Variance with ties: n(n-1)(2n+5) - sum t(t-1)(2t+5), over 18.
	counts := map[float64]int{}
	for _, x := range xs {
		counts[x]++
	}
	nf := float64(n)
	v := nf * (nf - 1) * (2*nf + 5)
	for _, c := range counts {
		if c > 1 {
			cf := float64(c)
			v -= cf * (cf - 1) * (2*cf + 5)
		}
	}
	v /= 18
	var z float64
	switch {
	case v <= 0:
	case s > 0:
		z = float64(s-1) / math.Sqrt(v)
	case s < 0:
		z = float64(s+1) / math.Sqrt(v)
	}
	res.S, res.Zscore = s, z
	res.Slope = SenSlope(xs)
	med := Median(xs)
	if med != 0 {
		res.Change = res.Slope * float64(n-1) / math.Abs(med)
	}
	res.Trend = TrendStable
	if math.Abs(z) >= t.Z && math.Abs(res.Change) >= t.MinChange {
		if z > 0 {
			res.Trend = TrendRising
		} else {
			res.Trend = TrendFalling
		}
	}
	return res
}

// SenSlope is the median of the pairwise slopes (xs[j]-xs[i])/(j-i).
func SenSlope(xs []float64) float64 {
	n := len(xs)
	if n < 2 {
		return 0
	}
	slopes := make([]float64, 0, n*(n-1)/2)
	for i := 0; i < n-1; i++ {
		for j := i + 1; j < n; j++ {
			slopes = append(slopes, (xs[j]-xs[i])/float64(j-i))
		}
	}
	return Median(slopes)
}

// Median returns the median of xs (0 for none); xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	c := append([]float64(nil), xs...)
	sort.Float64s(c)
	m := len(c) / 2
	if len(c)%2 == 1 {
		return c[m]
	}
	return (c[m-1] + c[m]) / 2
}

// MADScale makes the median absolute deviation a consistent estimator of
// the standard deviation for normal data.
const MADScale = 1.4826

// AnomalyThreshold is the score above which a point is anomalous
// (Iglewicz and Hoaglin's 3.5).
const AnomalyThreshold = 3.5

// AnomalyScore is |x - median(history)| / (1.4826 * MAD(history)). When the
// MAD is 0 the score is 0 for x equal to the median and AnomalyThreshold*2
// otherwise (a flat history and a departure from it). Fewer than 3 history
// points give 0.
func AnomalyScore(x float64, history []float64) float64 {
	if len(history) < 3 {
		return 0
	}
	med := Median(history)
	dev := make([]float64, len(history))
	for i, h := range history {
		dev[i] = math.Abs(h - med)
	}
	mad := Median(dev) * MADScale
	d := math.Abs(x - med)
	if mad == 0 {
		if d <= 1e-9*math.Max(1, math.Abs(med)) {
			return 0
		}
		return AnomalyThreshold * 2
	}
	return d / mad
}
