package policy

import (
	"sync/atomic"
	"time"
)

// budgetWindow is the window over which a retry budget is measured (10 s,
// per directives.proto), kept in 1-second buckets.
const budgetWindow = 10

// budget is a token-style retry budget: retries may be at most ratio of the
// requests seen over the last 10 seconds, plus minPerSecond×10 so that
// low-traffic routes can retry at all. Lock-free: buckets are reset by the
// first writer of a new second, which may lose a count in a race; a budget
// is an estimate, not a ledger.
type budget struct {
	ratio        float64
	minPerSecond uint32
	buckets      [budgetWindow]budgetBucket
}

type budgetBucket struct {
	sec      atomic.Int64
	requests atomic.Int64
	retries  atomic.Int64
}

func newBudget(ratio float64, minPerSecond uint32) *budget {
	return &budget{ratio: ratio, minPerSecond: minPerSecond}
}

func (b *budget) bucket(now time.Time) *budgetBucket {
	sec := now.Unix()
	bk := &b.buckets[sec%budgetWindow]
	if old := bk.sec.Load(); old != sec && bk.sec.CompareAndSwap(old, sec) {
		bk.requests.Store(0)
		bk.retries.Store(0)
	}
	return bk
}

// request counts one request (not a retry).
func (b *budget) request(now time.Time) { b.bucket(now).requests.Add(1) }

// totals returns the requests and retries of the window ending now.
func (b *budget) totals(now time.Time) (requests, retries int64) {
	sec := now.Unix()
	for i := range b.buckets {
		bk := &b.buckets[i]
		if s := bk.sec.Load(); s > sec-budgetWindow && s <= sec {
			requests += bk.requests.Load()
			retries += bk.retries.Load()
		}
	}
	return requests, retries
}

// tryRetry takes a retry token if the budget allows one, and says whether it did.
func (b *budget) tryRetry(now time.Time) bool {
	req, ret := b.totals(now)
	allowed := b.ratio*float64(req) + float64(b.minPerSecond)*budgetWindow
	if float64(ret+1) > allowed {
		return false
	}
	b.bucket(now).retries.Add(1)
	return true
}
