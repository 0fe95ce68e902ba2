package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CheckSmoke checks that a run produced every file and a number for every
// scenario that could run. It asserts no timing: only that the harness works.
func CheckSmoke(r *Report, _ Config) error {
	var errs []error
	for _, f := range r.Files {
		st, err := os.Stat(filepath.Join(r.OutDir, f))
		if err != nil || st.Size() == 0 {
			errs = append(errs, fmt.Errorf("file %s missing or empty", f))
		}
	}
	for _, want := range []string{"results.json", "report.md", "p99.png", "micro.txt"} {
		found := false
		for _, f := range r.Files {
			found = found || f == want
		}
		if !found {
			errs = append(errs, fmt.Errorf("%s not written", want))
		}
	}
	for _, e := range r.Errors {
		errs = append(errs, errors.New("scenario error: "+e))
	}
	if r.Proxy == nil || len(r.Proxy.Runs) == 0 {
		errs = append(errs, errors.New("no proxy runs"))
	} else {
		seen := map[string]bool{}
		for _, run := range r.Proxy.Runs {
			seen[run.Target] = true
			// Every target must answer (some of) a tiny run; a few errors on
			// a loaded machine are reported in the table, not failed here.
			if run.ErrRate >= 1 {
				errs = append(errs, fmt.Errorf("proxy %s %s: every request failed: %s", run.Target, run.Proto, run.FirstErr))
			} else if run.Requests == 0 || run.P50ms <= 0 || run.P99ms < run.P50ms {
				errs = append(errs, fmt.Errorf("proxy %s %s: no latency figures (%d requests, p50 %v)", run.Target, run.Proto, run.Requests, run.P50ms))
			}
		}
		if !seen[TargetDirect] {
			errs = append(errs, errors.New("direct target not measured"))
		}
		for _, t := range []string{TargetSidecarEmit, TargetSidecarNoEmit, TargetNginx, TargetHAProxy} {
			if !seen[t] && r.Proxy.Skipped[t] == "" {
				errs = append(errs, fmt.Errorf("target %s neither measured nor skipped with a reason", t))
			}
		}
		if len(r.Saturation) == 0 {
			errs = append(errs, errors.New("no saturation figures"))
		}
	}
	if r.Pipeline == nil || len(r.Pipeline.Rounds) == 0 {
		errs = append(errs, errors.New("no pipeline figures"))
	} else {
		for _, p := range r.Pipeline.Rounds {
			if p.ProduceEPS <= 0 || p.BusEPS <= 0 || (r.Pipeline.StoreErr == "" && (p.StoredEPS <= 0 || p.StoreRowsPS <= 0 || p.AnalyzedEPS <= 0)) {
				errs = append(errs, fmt.Errorf("pipeline round %d lacks figures: %+v", p.Round, p))
			}
		}
		if r.Pipeline.StoreErr == "" && (r.Pipeline.Latency == nil || r.Pipeline.Latency.StoredP99ms <= 0 || r.Pipeline.Latency.AnalyzedP99ms <= 0) {
			errs = append(errs, errors.New("no pipeline latency figures"))
		}
	}
	if r.Loop == nil || !r.Loop.FanOut.Valid() || !r.Loop.Critical.Valid() {
		errs = append(errs, errors.New("closed loop not measured"))
	}
	if r.Micro == nil || len(r.Micro.Results) == 0 {
		errs = append(errs, errors.New("no micro-benchmark results"))
	}
	return errors.Join(errs...)
}
