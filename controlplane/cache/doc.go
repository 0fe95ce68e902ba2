// Package cache owns the control plane's hot views cache: the key families
// of the original design (service:meta:{service} 300s,
// perf:{service}:{operation} 60s, intel:{pattern_type} 3600s,
// opt:{service} 1800s), their adaptive TTLs, read-through loading from the
// store, invalidation on write, and per-family hit/miss metrics.
//
// Two implementations share one interface: [Redis] (go-redis/v9) and
// [Mem], an in-process cache for `omnibridge dev` (non-durable, per process).
//
// The cache is never the source of truth: when Redis fails, reads fall
// through to the loader (slower, never wrong), and invalidations that could
// not be delivered are retried before the cache is trusted again.
package cache
