package policy

import (
	"math/rand/v2"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// weights picks an upstream endpoint by weight.
type weights struct {
	endpoints []*bridgev1.WeightedEndpoint
	cum       []uint64
	total     uint64
}

func newWeights(p *bridgev1.TrafficWeightsPolicy) *weights {
	w := &weights{endpoints: p.GetEndpoints()}
	for _, e := range p.GetEndpoints() {
		w.total += uint64(e.GetWeight())
		w.cum = append(w.cum, w.total)
	}
	return w
}

func (w *weights) pick() *bridgev1.WeightedEndpoint {
	n := rand.Uint64N(w.total)
	for i, c := range w.cum {
		if n < c {
			return w.endpoints[i]
		}
	}
	return w.endpoints[len(w.endpoints)-1]
}
