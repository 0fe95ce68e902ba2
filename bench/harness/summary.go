package harness

import (
	"math"
	"slices"
)

// ProxySummary is one target in one cell, summarised over rounds.
type ProxySummary struct {
	Proto  string `json:"proto"`
	Body   int    `json:"body"`
	Rate   int    `json:"rate"`
	Target string `json:"target"`
	// Rounds used (generator on schedule) of Rounds run.
	Used   int    `json:"rounds_used"`
	Rounds int    `json:"rounds"`
	P50ms  Spread `json:"p50_ms"`
	P99ms  Spread `json:"p99_ms"`
	P999ms Spread `json:"p999_ms"`
	// Added latency over direct in the same round, in ms.
	AddP50ms  Spread `json:"added_p50_ms"`
	AddP99ms  Spread `json:"added_p99_ms"`
	AddP999ms Spread `json:"added_p999_ms"`
	ErrRate   Spread `json:"error_rate"`
	CPUPer1k  Spread `json:"cpu_s_per_1k"`
	RSSMB     Spread `json:"rss_mb"`
	FirstErr  string `json:"first_error,omitempty"`
	// Ratios of medians to the best proxy (not direct) in the cell; 1 is the
	// best, 0 means not applicable (direct). AddP99Ratio compares absolute p99.
	AddP99Ratio float64 `json:"added_p99_x_best"`
	CPURatio    float64 `json:"cpu_x_best"`
	RSSRatio    float64 `json:"rss_x_best"`
}

// SatSummary is the saturation search of one target over rounds.
type SatSummary struct {
	Target  string  `json:"target"`
	MaxRate Spread  `json:"max_rate"`
	Ratio   float64 `json:"x_best"`
	PeakMB  float64 `json:"peak_rss_mb"`
	Stop    string  `json:"last_stop_reason"`
}

type cellKey struct {
	proto      string
	body, rate int
}

func summariseProxy(pr *ProxyResults, rounds int) ([]ProxySummary, []SatSummary) {
	var out []ProxySummary
	if pr == nil {
		return nil, nil
	}
	direct := map[cellKey]map[int]ProxyRun{}
	var keys []cellKey
	var targets []string
	for _, r := range pr.Runs {
		k := cellKey{r.Proto, r.Body, r.Rate}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
		if !slices.Contains(targets, r.Target) {
			targets = append(targets, r.Target)
		}
		if r.Target == TargetDirect {
			if direct[k] == nil {
				direct[k] = map[int]ProxyRun{}
			}
			direct[k][r.Round] = r
		}
	}
	for _, k := range keys {
		var cellSums []ProxySummary
		for _, t := range targets {
			var runs []ProxyRun
			for _, r := range pr.Runs {
				if r.Target == t && (cellKey{r.Proto, r.Body, r.Rate}) == k {
					runs = append(runs, r)
				}
			}
			if len(runs) == 0 {
				continue
			}
			// Use only rounds where the generator kept its schedule (for this
			// target and for direct); if none did, use all and say so via Used=0.
			ok := func(r ProxyRun) bool {
				d, has := direct[k][r.Round]
				return !r.Behind && (!has || !d.Behind)
			}
			used := 0
			for _, r := range runs {
				if ok(r) {
					used++
				}
			}
			s := ProxySummary{Proto: k.proto, Body: k.body, Rate: k.rate, Target: t, Used: used, Rounds: len(runs)}
			var p50, p99, p999, a50, a99, a999, er, cpu, rss []float64
			for _, r := range runs {
				if used > 0 && !ok(r) {
					continue
				}
				p50, p99, p999 = append(p50, r.P50ms), append(p99, r.P99ms), append(p999, r.P999ms)
				er, cpu, rss = append(er, r.ErrRate), append(cpu, r.CPUPer1k), append(rss, float64(r.RSSKB)/1024)
				if d, has := direct[k][r.Round]; has {
					a50, a99, a999 = append(a50, r.P50ms-d.P50ms), append(a99, r.P99ms-d.P99ms), append(a999, r.P999ms-d.P999ms)
				}
				if s.FirstErr == "" && r.FirstErr != "" {
					s.FirstErr = r.FirstErr
				}
			}
			s.P50ms, s.P99ms, s.P999ms = spreadOf(p50), spreadOf(p99), spreadOf(p999)
			s.AddP50ms, s.AddP99ms, s.AddP999ms = spreadOf(a50), spreadOf(a99), spreadOf(a999)
			s.ErrRate, s.CPUPer1k, s.RSSMB = spreadOf(er), spreadOf(cpu), spreadOf(rss)
			cellSums = append(cellSums, s)
		}
		bestLat, bestCPU, bestRSS := math.Inf(1), math.Inf(1), math.Inf(1)
		for _, s := range cellSums {
			if s.Target == TargetDirect {
				continue
			}
			// Added latency can be ~0 or negative within noise; rank on
			// absolute p99, which is what the ratio is then computed on.
			bestLat = math.Min(bestLat, s.P99ms.Median)
			bestCPU = math.Min(bestCPU, s.CPUPer1k.Median)
			bestRSS = math.Min(bestRSS, s.RSSMB.Median)
		}
		for i := range cellSums {
			s := &cellSums[i]
			if s.Target == TargetDirect {
				s.AddP99Ratio, s.CPURatio, s.RSSRatio = 0, 0, 0
				continue
			}
			s.AddP99Ratio = ratio(s.P99ms.Median, bestLat)
			s.CPURatio = ratio(s.CPUPer1k.Median, bestCPU)
			s.RSSRatio = ratio(s.RSSMB.Median, bestRSS)
		}
		out = append(out, cellSums...)
	}
	var sats []SatSummary
	best := 0.0
	for _, t := range targets {
		var rates []float64
		stop := ""
		for _, s := range pr.Sat {
			if s.Target == t {
				rates = append(rates, float64(s.MaxRate))
				stop = s.StopReason
			}
		}
		if len(rates) == 0 {
			continue
		}
		ss := SatSummary{Target: t, MaxRate: spreadOf(rates), Stop: stop, PeakMB: float64(pr.PeakRSSKB[t]) / 1024}
		if t != TargetDirect {
			best = math.Max(best, ss.MaxRate.Median)
		}
		sats = append(sats, ss)
	}
	for i := range sats {
		if sats[i].Target == TargetDirect || best == 0 {
			sats[i].Ratio = 0
			continue
		}
		sats[i].Ratio = ratio(sats[i].MaxRate.Median, best)
	}
	return out, sats
}

// ratio is v/best, or 0 (not applicable) when either is not a positive number.
func ratio(v, best float64) float64 {
	r := v / best
	if !(best > 0) || !(v > 0) || math.IsInf(r, 0) || math.IsNaN(r) {
		return 0
	}
	return r
}
