package policy

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"golang.org/x/time/rate"
)

// rateLimiter is a token bucket (x/time/rate is itself safe for concurrent use).
type rateLimiter struct {
	lim *rate.Limiter
	rps float64
}

func newRateLimiter(p *bridgev1.RateLimitPolicy) *rateLimiter {
	return &rateLimiter{lim: rate.NewLimiter(rate.Limit(p.GetRequestsPerSecond()), int(p.GetBurst())), rps: p.GetRequestsPerSecond()}
}

// retryAfter is the Retry-After a shed request gets: the time for one token,
// rounded up to whole seconds.
func (r *rateLimiter) retryAfter() int { return int(math.Ceil(1 / r.rps)) }

// concurrency is an adaptive concurrency limit. Admission is two atomic
// operations; adaptation runs on release under a TryLock, so a busy limiter
// skips a sample rather than making a request wait.
type concurrency struct {
	limit    atomic.Int64
	inflight atomic.Int64
	alg      bridgev1.ConcurrencyAlgorithm
	min, max float64

	mu       sync.Mutex
	lim      float64
	minRTT   time.Duration
	minSince time.Time
	nextMin  time.Duration
}

// minRTTPeriod is how long a minimum RTT stands before it is re-measured, so
// that a permanent latency shift is eventually taken as the new normal.
const minRTTPeriod = 10 * time.Second

func newConcurrency(p *bridgev1.ConcurrencyLimitPolicy) *concurrency {
	c := &concurrency{alg: p.GetAlgorithm(), min: float64(p.GetMinLimit()), max: float64(p.GetMaxLimit()), lim: float64(p.GetInitialLimit())}
	c.limit.Store(int64(p.GetInitialLimit()))
	return c
}

// acquire admits a request if fewer than the limit are in flight. With force
// (dry-run) the request is always counted and ok says what enforcement would do.
func (c *concurrency) acquire(force bool) bool {
	n := c.inflight.Add(1)
	if n <= c.limit.Load() {
		return true
	}
	if !force {
		c.inflight.Add(-1)
	}
	return false
}

// release ends an admitted request that took rtt, and adapts the limit.
func (c *concurrency) release(now time.Time, rtt time.Duration) {
	inflight := c.inflight.Add(-1) + 1
	if c.alg != bridgev1.ConcurrencyAlgorithm_CONCURRENCY_ALGORITHM_GRADIENT && c.alg != bridgev1.ConcurrencyAlgorithm_CONCURRENCY_ALGORITHM_VEGAS {
		return
	}
	if rtt <= 0 || !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if c.minRTT == 0 || rtt < c.minRTT {
		c.minRTT = rtt
		c.minSince = now
	}
	if now.Sub(c.minSince) > minRTTPeriod {
		// Re-measure: take the best of the last period as the new minimum.
		c.minRTT, c.minSince, c.nextMin = max(c.nextMin, rtt), now, 0
	}
	if c.nextMin == 0 || rtt < c.nextMin {
		c.nextMin = rtt
	}
	appLimited := float64(inflight)*2 < c.lim
	ratio := float64(c.minRTT) / float64(rtt)
	switch c.alg {
	case bridgev1.ConcurrencyAlgorithm_CONCURRENCY_ALGORITHM_GRADIENT:
		gradient := math.Max(0.5, math.Min(1, ratio))
		next := c.lim*gradient + math.Sqrt(c.lim)
		if appLimited && next > c.lim {
			next = c.lim
		}
		c.lim = c.lim*0.8 + next*0.2
	case bridgev1.ConcurrencyAlgorithm_CONCURRENCY_ALGORITHM_VEGAS:
		queue := c.lim * (1 - ratio)
		alpha, beta := 3*math.Max(1, math.Log10(c.lim)), 6*math.Max(1, math.Log10(c.lim))
		switch {
		case queue > beta:
			c.lim--
		case queue < alpha && !appLimited:
			c.lim++
		}
	}
	c.lim = math.Max(c.min, math.Min(c.max, c.lim))
	c.limit.Store(int64(c.lim))
}
