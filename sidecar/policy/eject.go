package policy

import (
	"sync"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// ejector is outlier ejection: with a circuit-breaker directive and a
// traffic-weights directive in force together, each endpoint gets its own
// breaker (same parameters); an endpoint whose breaker is open is skipped by
// the weighted choice, as long as no more than max_ejection_percent of the
// endpoints are ejected at once.
type ejector struct {
	p   *bridgev1.CircuitBreakerPolicy
	d   *bridgev1.Directive
	eng *Engine
	mu  sync.Mutex
	eps map[string]*breaker
}

func (b *breaker) endpoints() *ejector {
	b.ejOnce.Do(func() { b.ej = &ejector{p: b.policy, d: b.directive, eng: b.eng, eps: map[string]*breaker{}} })
	return b.ej
}

func (j *ejector) get(ep string) *breaker {
	j.mu.Lock()
	defer j.mu.Unlock()
	br := j.eps[ep]
	if br == nil {
		br = newBreaker(j.p, j.d, j.eng)
		br.route = ep
		j.eps[ep] = br
	}
	return br
}

// choose returns the endpoint to use instead of picked, whether picked was
// ejected, and whether the request is a half-open probe of the endpoint it
// goes to. An ejected endpoint is replaced by the heaviest one whose breaker
// is closed, while the ejected share stays within the cap.
func (j *ejector) choose(w *weights, picked *bridgev1.WeightedEndpoint, now time.Time) (ep *bridgev1.WeightedEndpoint, ejected, probe bool) {
	ok, _, probe := j.get(picked.GetEndpoint()).allow(now)
	if ok {
		return picked, false, probe
	}
	open := 0
	var best *bridgev1.WeightedEndpoint
	for _, e := range w.endpoints {
		br := j.get(e.GetEndpoint())
		br.mu.Lock()
		st := br.state
		br.mu.Unlock()
		if st != breakerClosed {
			open++
		} else if e.GetWeight() > 0 && (best == nil || e.GetWeight() > best.GetWeight()) {
			best = e
		}
	}
	if best == nil || float64(open)/float64(len(w.endpoints)) > j.p.GetMaxEjectionPercent() {
		return picked, false, false // ejecting more would leave too little capacity
	}
	return best, true, false
}
