package policy

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// Error-burst detection: per route, a rolling window of burstBuckets
// buckets, each one atomic word packing the bucket's epoch with its request
// and failure counts, updated by compare-and-swap. The request path takes no
// lock; a failure sums the window (burstBuckets atomic loads) and, when the
// failure share reaches the threshold over enough requests, emits
// SIGNAL_KIND_ERROR_BURST (throttled per route like every signal).

const (
	burstBuckets   = 10
	burstCountBits = 20
	burstCountMask = 1<<burstCountBits - 1 // a bucket saturates at ~1M requests
	burstEpochMask = 1<<(64-2*burstCountBits) - 1
	// burstMaxRoutes bounds the routes tracked apart; the rest (requests
	// without a route template whose paths are unbounded) share the
	// service-wide window, reported with an empty route.
	burstMaxRoutes = 1024
)

// burstWindow is one route's rolling window of request outcomes.
type burstWindow struct {
	buckets [burstBuckets]atomic.Uint64
}

// add counts one outcome at epoch ep (bucket number since the Unix epoch).
func (w *burstWindow) add(ep uint64, failed bool) {
	tag := ep & burstEpochMask
	b := &w.buckets[ep%burstBuckets]
	for {
		old := b.Load()
		var total, fail uint64
		if old>>(2*burstCountBits) == tag {
			total, fail = old>>burstCountBits&burstCountMask, old&burstCountMask
		}
		if total == burstCountMask {
			return // saturated: the share stays what it was
		}
		total++
		if failed {
			fail++
		}
		if b.CompareAndSwap(old, tag<<(2*burstCountBits)|total<<burstCountBits|fail) {
			return
		}
	}
}

// sum returns the requests and failures of the window ending at epoch ep.
func (w *burstWindow) sum(ep uint64) (total, fail uint64) {
	tag := ep & burstEpochMask
	for i := range w.buckets {
		v := w.buckets[i].Load()
		if (tag-v>>(2*burstCountBits))&burstEpochMask < burstBuckets {
			total += v >> burstCountBits & burstCountMask
			fail += v & burstCountMask
		}
	}
	return total, fail
}

// burstDetector holds the windows of every route.
type burstDetector struct {
	threshold float64
	minReq    uint64
	width     int64 // bucket width in nanoseconds
	routes    sync.Map
	nroutes   atomic.Int32
	shared    burstWindow
}

func newBurstDetector(c ErrorBurstConfig) *burstDetector {
	return &burstDetector{threshold: c.Threshold, minReq: uint64(c.MinRequests), width: int64(c.Window / burstBuckets)}
}

func (d *burstDetector) window(route string) (*burstWindow, string) {
	if v, ok := d.routes.Load(route); ok {
		return v.(*burstWindow), route
	}
	if d.nroutes.Add(1) > burstMaxRoutes {
		d.nroutes.Add(-1)
		return &d.shared, ""
	}
	v, loaded := d.routes.LoadOrStore(route, new(burstWindow))
	if loaded {
		d.nroutes.Add(-1)
	}
	return v.(*burstWindow), route
}

// observe counts the outcome of one request to the upstream on route and
// signals a burst.
func (e *Engine) observe(ctx context.Context, route string, resp *http.Response, err error) {
	d := e.bursts
	if d == nil {
		return
	}
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return // the client went away: says nothing about the upstream
	}
	failed, _ := classify(resp, err, ctx)
	now := time.Now()
	ep := uint64(now.UnixNano() / d.width)
	w, route := d.window(route)
	w.add(ep, failed)
	if !failed {
		return // a burst only starts with a failure
	}
	total, fail := w.sum(ep)
	if total < d.minReq {
		return
	}
	if share := float64(fail) / float64(total); share >= d.threshold {
		e.signal(ctx, bridgev1.SignalKind_SIGNAL_KIND_ERROR_BURST, route, share, total)
	}
}
