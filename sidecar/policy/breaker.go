package policy

import (
	"context"
	"sync"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

type breakerState int

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

const breakerBuckets = 10

// breaker is a circuit breaker over a rolling window with half-open
// probing. Its mutex guards a few integers and is never held across I/O;
// the snapshot that leads to it is read without a lock.
type breaker struct {
	threshold float64
	minReq    int
	window    time.Duration
	openFor   time.Duration
	probes    int
	slow      time.Duration
	route     string
	eng       *Engine
	policy    *bridgev1.CircuitBreakerPolicy
	directive *bridgev1.Directive
	ejOnce    sync.Once
	ej        *ejector

	mu             sync.Mutex
	state          breakerState
	openedAt       time.Time
	probesSent     int
	probeSuccesses int
	buckets        [breakerBuckets]struct {
		start       time.Time
		total, fail int
	}
}

func newBreaker(p *bridgev1.CircuitBreakerPolicy, d *bridgev1.Directive, eng *Engine) *breaker {
	return &breaker{
		threshold: p.GetFailureRateThreshold(), minReq: int(p.GetMinRequests()),
		window: p.GetWindow().AsDuration(), openFor: p.GetOpenDuration().AsDuration(),
		probes: int(p.GetHalfOpenProbes()), slow: p.GetSlowCallThreshold().AsDuration(),
		route: d.GetScope().GetRoute(), eng: eng, policy: p, directive: d,
	}
}

// allow says whether a request may go to the upstream now; when not, how
// long until the breaker probes again. probe is true when the request is a
// half-open probe.
func (b *breaker) allow(now time.Time) (ok bool, retryAfter time.Duration, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if wait := b.openedAt.Add(b.openFor).Sub(now); wait > 0 {
			return false, wait, false
		}
		b.state, b.probesSent, b.probeSuccesses = breakerHalfOpen, 0, 0
		fallthrough
	case breakerHalfOpen:
		if b.probesSent >= b.probes {
			return false, b.openFor, false
		}
		b.probesSent++
		return true, 0, true
	}
	return true, 0, false
}

// record adds the outcome of one upstream attempt of the request ctx.
func (b *breaker) record(ctx context.Context, now time.Time, failed bool, latency time.Duration, probe bool) {
	if b.slow > 0 && latency > b.slow {
		failed = true
	}
	b.mu.Lock()
	opened := false
	var rate float64
	var total int
	switch {
	case b.state == breakerHalfOpen && probe:
		if failed {
			b.state, b.openedAt = breakerOpen, now
			opened = true
		} else if b.probeSuccesses++; b.probeSuccesses >= b.probes {
			b.state = breakerClosed
			b.buckets = [breakerBuckets]struct {
				start       time.Time
				total, fail int
			}{}
		}
	case b.state == breakerClosed:
		width := b.window / breakerBuckets
		start := now.Truncate(width)
		bk := &b.buckets[(now.UnixNano()/int64(width))%breakerBuckets]
		if !bk.start.Equal(start) {
			bk.start, bk.total, bk.fail = start, 0, 0
		}
		bk.total++
		if failed {
			bk.fail++
		}
		var fail int
		for i := range b.buckets {
			if now.Sub(b.buckets[i].start) < b.window {
				total += b.buckets[i].total
				fail += b.buckets[i].fail
			}
		}
		if total >= b.minReq {
			if rate = float64(fail) / float64(total); rate >= b.threshold {
				b.state, b.openedAt = breakerOpen, now
				opened = true
			}
		}
	}
	b.mu.Unlock()
	if opened {
		b.eng.signal(ctx, bridgev1.SignalKind_SIGNAL_KIND_BREAKER_OPENED, b.route, rate, uint64(total))
	}
}

// current returns the state (for tests and metrics).
func (b *breaker) current() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
