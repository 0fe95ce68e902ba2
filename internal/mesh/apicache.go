package mesh

import (
	"context"
	"time"

	"github.com/omninode/bridge/controlplane/cache"
	"golang.org/x/sync/singleflight"
)

// apiCache adapts the control plane's cache backend to intelapi.Cache with
// TTLs short enough for a live dashboard: the cache.Manager's families are
// the original design's (a Perf floor of 30 s), far too long for a route
// table refreshed every few seconds. Keys live under "api:" so they never
// collide with the Manager's families. Cache errors fall through to load.
type apiCache struct {
	backend cache.Cache
	ttl     func(family string) time.Duration
	group   singleflight.Group
}

// APICacheTTL is the default TTL of the intelligence API's answers per
// family: the route table and graph change every second, so they live 2 s;
// services, patterns, tools and journeys 5 s.
func APICacheTTL(family string) time.Duration {
	switch family {
	case "intel.routes", "intel.graph":
		return 2 * time.Second
	default:
		return 5 * time.Second
	}
}

func newAPICache(backend cache.Cache, ttl func(string) time.Duration) *apiCache {
	if ttl == nil {
		ttl = APICacheTTL
	}
	return &apiCache{backend: backend, ttl: ttl}
}

// GetOrLoad implements intelapi.Cache.
func (c *apiCache) GetOrLoad(ctx context.Context, family, key string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	k := "api:" + family + ":" + key
	if b, ok, err := c.backend.Get(ctx, k); err == nil && ok {
		return b, nil
	}
	v, err, _ := c.group.Do(k, func() (any, error) {
		b, err := load(ctx)
		if err != nil {
			return nil, err
		}
		_ = c.backend.Set(ctx, k, b, c.ttl(family))
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}
