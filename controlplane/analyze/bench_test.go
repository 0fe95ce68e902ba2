package analyze

import (
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// BenchmarkProcessCommunications measures the per-event cost of the
// analysis (statistics, graph, traces) in batches as the pipeline sends them.
func BenchmarkProcessCommunications(b *testing.B) {
	c := &clock{t: t0.Add(time.Hour)}
	a := newTestAnalyzer(b, c, nil)
	s := sources{}
	const batch = 1000
	evs := make([]*bridgev1.CommunicationIntelligenceEvent, 0, 10*batch)
	for i := 0; i < 10*batch; i++ {
		st := int32(200)
		if i%50 == 0 {
			st = 503
		}
		evs = append(evs, s.comm(comm{source: "web", target: []string{"api", "db", "auth"}[i%3], route: []string{"/a", "/b/{id}", "/c"}[i%3],
			at: t0.Add(time.Duration(i) * time.Millisecond), took: time.Duration(i%97) * time.Millisecond, status: st, trace: tid(i / 3), span: sid(i/3, i%3)}))
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		j := (i % 10) * batch
		if err := a.ProcessCommunications(b.Context(), evs[j:j+batch]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
