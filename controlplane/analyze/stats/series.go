package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// RelativeAccuracy is the sketches' documented relative accuracy: a quantile
// q of the sketch is within 1% of the exact q-quantile of the samples.
const RelativeAccuracy = 0.01

// maxBins bounds each sketch's memory (about 16 KiB); with 1% accuracy 2,048
// bins cover a dynamic range of e^(2048*0.02) ≈ 10^17, so no collapsing ever
// happens for latencies in milliseconds.
const maxBins = 2048

// Layout says how a Series buckets time. Fine buckets serve the sliding
// windows and the per-bucket medians of the trend test; coarse buckets serve
// the long baseline.
type Layout struct {
	// Fine is the width of a fine bucket. Default 1 minute.
	Fine time.Duration
	// FineCount is how many fine buckets are kept. Default 60 (one hour).
	FineCount int
	// Coarse is the width of a coarse bucket. Default 1 hour.
	Coarse time.Duration
	// CoarseCount is how many coarse buckets are kept. Default 24 (a day).
	CoarseCount int
}

// DefaultLayout is 60 one-minute buckets and 24 one-hour buckets.
func DefaultLayout() Layout {
	return Layout{Fine: time.Minute, FineCount: 60, Coarse: time.Hour, CoarseCount: 24}
}

// Validate checks the layout.
func (l Layout) Validate() error {
	switch {
	case l.Fine <= 0:
		return errors.New("layout: Fine must be > 0")
	case l.FineCount < 2 || l.FineCount > 10000:
		return fmt.Errorf("layout: FineCount %d out of range [2, 10000]", l.FineCount)
	case l.Coarse < l.Fine:
		return errors.New("layout: Coarse must be >= Fine")
	case l.CoarseCount < 1 || l.CoarseCount > 10000:
		return fmt.Errorf("layout: CoarseCount %d out of range [1, 10000]", l.CoarseCount)
	}
	return nil
}

// bucket holds everything known about one time slice.
type bucket struct {
	start     int64 // unix nanoseconds of the bucket start; 0 = unused
	count     float64
	errors    float64
	sumMs     float64
	ttfbMs    float64 // weighted sum of time to first byte
	ttfbCount float64
	calls     map[string]float64 // weighted downstream call time per callee
	sketch    *ddsketch.DDSketch
}

func newSketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(RelativeAccuracy, maxBins)
	if err != nil {
		panic(err) // constant arguments: cannot fail
	}
	return s
}

func (b *bucket) reset(start int64) {
	b.start = start
	b.count, b.errors, b.sumMs, b.ttfbMs, b.ttfbCount = 0, 0, 0, 0, 0
	b.calls = nil
	if b.sketch == nil {
		b.sketch = newSketch()
	} else {
		b.sketch.Clear()
	}
}

type ring struct {
	width   int64
	buckets []bucket
}

func newRing(width time.Duration, n int) ring {
	return ring{width: int64(width), buckets: make([]bucket, n)}
}

// slot returns the bucket for time t (unix nanoseconds), resetting a stale
// slot, or nil when t is older than what the slot holds now.
func (r *ring) slot(t int64) *bucket {
	start := t - mod(t, r.width)
	b := &r.buckets[int(mod(start/r.width, int64(len(r.buckets))))]
	switch {
	case b.start == start && b.sketch != nil:
		return b
	case b.start > start:
		return nil
	}
	b.reset(start)
	return b
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Series is a time-bucketed latency and outcome series. Not safe for
// concurrent use.
type Series struct {
	layout Layout
	fine   ring
	coarse ring
}

// NewSeries returns an empty series; layout must be valid.
func NewSeries(l Layout) *Series {
	return &Series{layout: l, fine: newRing(l.Fine, l.FineCount), coarse: newRing(l.Coarse, l.CoarseCount)}
}

// Sample is one observation.
type Sample struct {
	At        time.Time
	LatencyMs float64
	// Weight is how many requests the sample stands for (sampling); values
	// below 1 count as 1.
	Weight float64
	Failed bool
	// TTFBMs is the time to first byte, or a negative value when unknown.
	TTFBMs float64
}

// Add records a sample in its fine and coarse bucket. Samples older than the
// rings are ignored. O(1).
func (s *Series) Add(x Sample) {
	w := x.Weight
	if !(w >= 1) {
		w = 1
	}
	lat := x.LatencyMs
	if !(lat >= 0) || math.IsInf(lat, 0) {
		lat = 0
	}
	t := x.At.UnixNano()
	for _, r := range []*ring{&s.fine, &s.coarse} {
		b := r.slot(t)
		if b == nil {
			continue
		}
		b.count += w
		if x.Failed {
			b.errors += w
		}
		b.sumMs += lat * w
		if x.TTFBMs >= 0 {
			b.ttfbMs += x.TTFBMs * w
			b.ttfbCount += w
		}
		_ = b.sketch.AddWithCount(lat, w)
	}
}

// AddCall attributes downstream call time (ms, weighted) to callee in the
// buckets of at.
func (s *Series) AddCall(at time.Time, callee string, ms, weight float64) {
	if !(weight >= 1) {
		weight = 1
	}
	t := at.UnixNano()
	for _, r := range []*ring{&s.fine, &s.coarse} {
		b := r.slot(t)
		if b == nil {
			continue
		}
		if b.calls == nil {
			b.calls = map[string]float64{}
		}
		b.calls[callee] += ms * weight
	}
}

// Summary aggregates the buckets of a window.
type Summary struct {
	// Requests and Errors are weighted counts.
	Requests, Errors float64
	// SumMs is the weighted latency sum.
	SumMs float64
	// TTFBMs and TTFBCount give the weighted mean time to first byte.
	TTFBMs, TTFBCount float64
	// Calls is the weighted downstream time per callee.
	Calls map[string]float64
	// Span is the time the window's buckets cover, up to now.
	Span time.Duration
	// Sketch merges the buckets' sketches; empty when no samples.
	Sketch *ddsketch.DDSketch
}

// Mean is the mean latency in ms, or 0.
func (m Summary) Mean() float64 {
	if m.Requests == 0 {
		return 0
	}
	return m.SumMs / m.Requests
}

// Quantile returns the q-quantile latency in ms, or 0 when empty.
func (m Summary) Quantile(q float64) float64 {
	if m.Sketch == nil || m.Sketch.IsEmpty() {
		return 0
	}
	v, err := m.Sketch.GetValueAtQuantile(q)
	if err != nil {
		return 0
	}
	return v
}

// Window merges the buckets overlapping (now-window, now]. Windows up to the
// fine span use fine buckets, longer ones coarse buckets; so a window covers
// between window and window plus one bucket, and Span says how much.
func (s *Series) Window(now time.Time, window time.Duration) Summary {
	r := &s.fine
	if window > s.layout.Fine*time.Duration(s.layout.FineCount) {
		r = &s.coarse
	}
	n := now.UnixNano()
	from := n - int64(window)
	out := Summary{Sketch: newSketch()}
	oldest := n
	for i := range r.buckets {
		b := &r.buckets[i]
		if b.sketch == nil || b.start+r.width <= from || b.start > n {
			continue
		}
		if b.start < oldest {
			oldest = b.start
		}
		out.Requests += b.count
		out.Errors += b.errors
		out.SumMs += b.sumMs
		out.TTFBMs += b.ttfbMs
		out.TTFBCount += b.ttfbCount
		for k, v := range b.calls {
			if out.Calls == nil {
				out.Calls = map[string]float64{}
			}
			out.Calls[k] += v
		}
		_ = out.Sketch.MergeWith(b.sketch)
	}
	out.Span = time.Duration(n - oldest)
	if out.Span < time.Second {
		out.Span = time.Second
	}
	return out
}

// Point is one fine bucket's figures, for trend and anomaly tests.
type Point struct {
	Start    time.Time
	Requests float64
	Errors   float64
	Median   float64
	Mean     float64
}

// Points returns the last n fine buckets ending with the one holding now,
// oldest first; buckets with fewer than minWeight requests are left out.
func (s *Series) Points(now time.Time, n int, minWeight float64) []Point {
	w := s.fine.width
	cur := now.UnixNano() - mod(now.UnixNano(), w)
	out := make([]Point, 0, n)
	for i := n - 1; i >= 0; i-- {
		start := cur - int64(i)*w
		b := &s.fine.buckets[int(mod(start/w, int64(len(s.fine.buckets))))]
		if b.sketch == nil || b.start != start || b.count < minWeight || b.count == 0 {
			continue
		}
		med, _ := b.sketch.GetValueAtQuantile(0.5)
		out = append(out, Point{Start: time.Unix(0, start).UTC(), Requests: b.count, Errors: b.errors, Median: med, Mean: b.sumMs / b.count})
	}
	return out
}

// BucketExport is one bucket in portable form, for merging the series of
// several control-plane replicas.
type BucketExport struct {
	Coarse    bool               `json:"coarse,omitempty"`
	Start     int64              `json:"start"`
	Count     float64            `json:"count"`
	Errors    float64            `json:"errors"`
	SumMs     float64            `json:"sum_ms"`
	TTFBMs    float64            `json:"ttfb_ms"`
	TTFBCount float64            `json:"ttfb_count"`
	Calls     map[string]float64 `json:"calls,omitempty"`
	// Sketch is the DDSketch in its own binary encoding (index mapping included).
	Sketch []byte `json:"sketch"`
}

// Export returns every live bucket, fine and coarse, ordered by start.
func (s *Series) Export() []BucketExport {
	var out []BucketExport
	for ri, r := range []*ring{&s.fine, &s.coarse} {
		for i := range r.buckets {
			b := &r.buckets[i]
			if b.sketch == nil || b.count == 0 {
				continue
			}
			var enc []byte
			b.sketch.Encode(&enc, false)
			calls := make(map[string]float64, len(b.calls))
			for k, v := range b.calls {
				calls[k] = v
			}
			out = append(out, BucketExport{Coarse: ri == 1, Start: b.start, Count: b.count, Errors: b.errors,
				SumMs: b.sumMs, TTFBMs: b.ttfbMs, TTFBCount: b.ttfbCount, Calls: calls, Sketch: enc})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Coarse != out[j].Coarse {
			return !out[i].Coarse
		}
		return out[i].Start < out[j].Start
	})
	return out
}

// Merge adds exported buckets (from another replica) into this series.
// Buckets older than what a slot holds are skipped. Merging is exact: counts
// add, and sketch bins with the same index mapping add.
func (s *Series) Merge(in []BucketExport) error {
	for _, e := range in {
		r := &s.fine
		if e.Coarse {
			r = &s.coarse
		}
		if mod(e.Start, r.width) != 0 {
			return fmt.Errorf("merge bucket: start %d not aligned to %s", e.Start, time.Duration(r.width))
		}
		b := r.slot(e.Start)
		if b == nil {
			continue
		}
		sk, err := ddsketch.DecodeDDSketch(e.Sketch, store.DenseStoreConstructor, nil)
		if err != nil {
			return fmt.Errorf("decode sketch: %w", err)
		}
		if !sk.IndexMapping.Equals(mustMapping()) {
			return errors.New("merge bucket: sketch has a different index mapping")
		}
		if err := b.sketch.MergeWith(sk); err != nil {
			return fmt.Errorf("merge sketch: %w", err)
		}
		b.count += e.Count
		b.errors += e.Errors
		b.sumMs += e.SumMs
		b.ttfbMs += e.TTFBMs
		b.ttfbCount += e.TTFBCount
		for k, v := range e.Calls {
			if b.calls == nil {
				b.calls = map[string]float64{}
			}
			b.calls[k] += v
		}
	}
	return nil
}

func mustMapping() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(RelativeAccuracy)
	if err != nil {
		panic(err)
	}
	return m
}
