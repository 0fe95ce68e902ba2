package cache_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/cache"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f     cache.Family
		score float64
		want  time.Duration
	}{
		{cache.ServiceMeta, 0, 300 * time.Second},
		{cache.ServiceMeta, 0.5, 450 * time.Second},
		{cache.ServiceMeta, 1, 600 * time.Second},
		{cache.ServiceMeta, 7, 600 * time.Second}, // clamped
		{cache.Perf, 0, 60 * time.Second},
		{cache.Perf, 0.25, 45 * time.Second},
		{cache.Perf, 0.9, 30 * time.Second}, // floor
		{cache.Intel, 0.5, 3600 * time.Second},
		{cache.Opt, 0.5, 1800 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%g", tt.f, tt.score), func(t *testing.T) {
			if got := cache.TTL(tt.f, tt.score); got != tt.want {
				t.Fatalf("TTL = %s, want %s", got, tt.want)
			}
		})
	}
	if k := cache.Perf.Key("pay", "charge"); k != "perf:pay:charge" {
		t.Fatalf("perf key %q", k)
	}
	if k := cache.ServiceMeta.Key("pay"); k != "service:meta:pay" {
		t.Fatalf("meta key %q", k)
	}
}

// source is a loader over a value that changes, counting loads.
type source struct {
	val   atomic.Int64
	loads atomic.Int64
}

func (s *source) load(context.Context) ([]byte, error) {
	s.loads.Add(1)
	return []byte(fmt.Sprint(s.val.Load())), nil
}

func testReadThrough(t *testing.T, c cache.Cache) {
	reg := prometheus.NewRegistry()
	m := cache.NewManager(cache.ManagerConfig{Cache: c, Registry: reg})
	ctx := t.Context()
	src := &source{}
	key := cache.Perf.Key("pay", "charge")
	for range 10 {
		v, err := m.GetOrLoad(ctx, cache.Perf, key, src.load)
		if err != nil || string(v) != "0" {
			t.Fatalf("got %q, %v", v, err)
		}
	}
	if src.loads.Load() != 1 {
		t.Fatalf("loaded %d times, want 1", src.loads.Load())
	}
	src.val.Store(1)
	m.Invalidate(ctx, cache.Perf, key)
	v, _ := m.GetOrLoad(ctx, cache.Perf, key, src.load)
	if string(v) != "1" {
		t.Fatalf("after invalidation got %q, want 1", v)
	}
	if h := hits(t, reg, "perf"); h != 9 {
		t.Fatalf("hits = %v, want 9", h)
	}
}

func hits(t *testing.T, reg *prometheus.Registry, fam string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "omnibridge_cache_hits_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == fam {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestReadThroughMem(t *testing.T) {
	t.Parallel()
	testReadThrough(t, cache.NewMem())
}

func TestReadThroughRedis(t *testing.T) {
	t.Parallel()
	r, err := cache.NewRedis(cache.RedisConfig{Addr: testenv.Redis(t).Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	testReadThrough(t, r)
}

// Redis stopped: answers stay right (from the loader); an invalidation made
// while it was down is delivered before the cache is trusted again; Redis
// back: the hit ratio recovers.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := testenv.Redis(t)
	r, err := cache.NewRedis(cache.RedisConfig{Addr: srv.Addr(), Cooldown: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reg := prometheus.NewRegistry()
	m := cache.NewManager(cache.ManagerConfig{Cache: r, Registry: reg})
	ctx := t.Context()
	src := &source{}
	key := cache.ServiceMeta.Key("pay")
	get := func() string {
		v, err := m.GetOrLoad(ctx, cache.ServiceMeta, key, src.load)
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	get() // cached "0"

	srv.Stop(t)
	src.val.Store(1)
	m.Invalidate(ctx, cache.ServiceMeta, key) // cannot reach Redis: kept pending
	for range 20 {
		if v := get(); v != "1" {
			t.Fatalf("with Redis down got %q, want 1", v)
		}
	}
	srv.Start(t) // empty after restart; the test also covers a Redis that kept the key
	if err := r.Set(ctx, key, []byte("0"), time.Minute); err != nil {
		// still in cooldown: wait it out and retry
		time.Sleep(150 * time.Millisecond)
		if err := r.Set(ctx, key, []byte("0"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// The stale "0" now in Redis must not be served: the pending invalidation goes first.
	time.Sleep(150 * time.Millisecond)
	before := hits(t, reg, "service_meta")
	for range 20 {
		if v := get(); v != "1" {
			t.Fatalf("after Redis came back got %q, want 1", v)
		}
	}
	if h := hits(t, reg, "service_meta") - before; h < 19 {
		t.Fatalf("hits after recovery = %v of 20, want the ratio to recover", h)
	}
}
