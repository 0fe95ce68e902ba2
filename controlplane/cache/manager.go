package cache

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxPending bounds the invalidations kept for retry while the cache is
// down; past it the manager purges every family once the cache is back.
const maxPending = 10_000

// Purger is implemented by caches that can delete a whole key family.
type Purger interface {
	Purge(ctx context.Context, prefix string) error
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Cache is the backend. Required.
	Cache Cache
	// Score returns the stability (ServiceMeta) or volatility (Perf) score in
	// [0, 1] used for a key's adaptive TTL; nil means 0 (the base TTL).
	Score func(f Family, key string) float64
	// Registry receives the hit/miss metrics; nil registers nowhere.
	Registry *prometheus.Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Manager is the read-through cache of the control plane's views. It never
// serves a value it cannot vouch for: a value loaded while an invalidation
// happened is not cached, and invalidations that failed are delivered
// before the cache is read again.
type Manager struct {
	cfg    ManagerConfig
	hits   *prometheus.CounterVec
	misses *prometheus.CounterVec
	errs   *prometheus.CounterVec

	epoch atomic.Uint64 // bumped by every invalidation

	mu       sync.Mutex
	pending  map[string]bool // invalidations not yet delivered
	overflow bool            // too many pending: purge everything on recovery
}

// NewManager returns a Manager over cfg.Cache.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{
		cfg: cfg,
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_cache_hits_total", Help: "Cache hits by key family.",
		}, []string{"family"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_cache_misses_total", Help: "Cache misses by key family (loaded from the store).",
		}, []string{"family"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_cache_errors_total", Help: "Cache backend errors by operation (reads fall through to the store).",
		}, []string{"op"}),
		pending: map[string]bool{},
	}
	for _, f := range Families {
		m.hits.WithLabelValues(f.String())
		m.misses.WithLabelValues(f.String())
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(m.hits, m.misses, m.errs)
	}
	return m
}

// Cache returns the backend.
func (m *Manager) Cache() Cache { return m.cfg.Cache }

// TTL returns the adaptive TTL of family for a stability or volatility score.
func (m *Manager) TTL(f Family, score float64) time.Duration { return TTL(f, score) }

// GetOrLoad returns the cached value of key (a key of family f, see
// Family.Key), or calls load, caches its result with the family's adaptive
// TTL and returns it. Cache errors never fail the call: they fall through
// to load.
func (m *Manager) GetOrLoad(ctx context.Context, f Family, key string, load func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	usable := m.flushPending(ctx)
	if usable {
		v, ok, err := m.cfg.Cache.Get(ctx, key)
		switch {
		case err != nil:
			m.errs.WithLabelValues("get").Inc()
			usable = false
		case ok:
			m.hits.WithLabelValues(f.String()).Inc()
			return v, nil
		}
	}
	m.misses.WithLabelValues(f.String()).Inc()
	epoch := m.epoch.Load()
	v, err := load(ctx)
	if err != nil {
		return nil, err
	}
	if usable && m.epoch.Load() == epoch {
		score := 0.0
		if m.cfg.Score != nil {
			score = m.cfg.Score(f, key)
		}
		if err := m.cfg.Cache.Set(ctx, key, v, TTL(f, score)); err != nil {
			m.errs.WithLabelValues("set").Inc()
		}
	}
	return v, nil
}

// Invalidate removes keys (of family f) after their source changed. When the
// cache cannot be reached the keys are kept and deleted before the cache is
// read again.
func (m *Manager) Invalidate(ctx context.Context, f Family, keys ...string) {
	if len(keys) == 0 {
		return
	}
	m.epoch.Add(1)
	if err := m.cfg.Cache.Del(ctx, keys...); err != nil {
		m.errs.WithLabelValues("del").Inc()
		m.mu.Lock()
		for _, k := range keys {
			if len(m.pending) >= maxPending {
				m.overflow = true
				break
			}
			m.pending[k] = true
		}
		m.mu.Unlock()
	}
}

// flushPending delivers failed invalidations and reports whether the cache
// may be used (nothing is left pending).
func (m *Manager) flushPending(ctx context.Context) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) == 0 && !m.overflow {
		return true
	}
	if m.overflow {
		p, ok := m.cfg.Cache.(Purger)
		if !ok {
			return false // cannot purge: never trust this cache again in this process
		}
		for _, f := range Families {
			if err := p.Purge(ctx, f.Prefix()); err != nil {
				m.errs.WithLabelValues("purge").Inc()
				return false
			}
		}
		m.overflow = false
		clear(m.pending)
		m.cfg.Logger.Info("cache purged after missed invalidations")
		return true
	}
	keys := make([]string, 0, len(m.pending))
	for k := range m.pending {
		keys = append(keys, k)
	}
	if err := m.cfg.Cache.Del(ctx, keys...); err != nil {
		m.errs.WithLabelValues("del").Inc()
		return false
	}
	clear(m.pending)
	return true
}
