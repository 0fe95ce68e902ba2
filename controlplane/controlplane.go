// Package controlplane is the control plane's composition root: it opens
// the store, cache and KV (PostgreSQL, Redis and Consul when configured,
// embedded non-durable ones otherwise), serves /metrics, /livez, /readyz and
// the Connect APIs other packages mount on its mux, and runs the ingest
// pipeline, store maintenance, the Consul catalog watcher and every
// registered component until its context ends.
//
// It wires; it does not analyze. Analysis plugs in through Processors and
// Observers, APIs through Mux, long-lived parts through Components, all set
// after New and before Run.
package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/omninode/bridge/controlplane/cache"
	"github.com/omninode/bridge/controlplane/ingest"
	"github.com/omninode/bridge/controlplane/kv"
	"github.com/omninode/bridge/controlplane/store"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// Component is a long-lived part started by Run.
type Component interface {
	Run(ctx context.Context) error
}

// ControlPlane is a running control plane's parts. Set Processors,
// Observers, Components and CatalogObservers, and mount handlers on Mux,
// before calling Run.
type ControlPlane struct {
	// Store is the durable state: *store.PG or *store.Mem.
	Store store.Store
	// PG is the PostgreSQL store, nil when embedded.
	PG *store.PG
	// Cache is the read-through views cache (Redis or embedded).
	Cache *cache.Manager
	// KV holds desired directive state and operator overrides (Consul or embedded).
	KV kv.KV
	// Consul is the Consul client, nil when embedded.
	Consul *api.Client
	// Mux serves HTTP/1.1 and h2c on Listen: /metrics, /livez, /readyz, and
	// whatever other packages mount.
	Mux *http.ServeMux
	// Processors receive newly stored events by type.
	Processors *ingest.Processors
	// Observers see every newly stored event with its lane.
	Observers []ingest.Observer
	// Components are started by Run beside the pipeline.
	Components []Component
	// CatalogObservers receive the Consul service picture on every change.
	CatalogObservers []func([]kv.CatalogService)

	cfg      Config
	ln       net.Listener
	redis    *cache.Redis
	catalog  *kv.CatalogWatcher
	ingested atomic.Bool // the ingest is running

	mu       sync.Mutex
	services []kv.CatalogService
}

// New opens the configured parts and listens on cfg.Listen. It logs which
// parts are embedded (and so non-durable). Close it with Run's end or Close.
func New(ctx context.Context, cfg Config) (_ *ControlPlane, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	cp := &ControlPlane{cfg: cfg, Mux: http.NewServeMux(), Processors: &ingest.Processors{}}
	defer func() {
		if err != nil {
			cp.Close()
		}
	}()

	scfg := store.DefaultConfig()
	scfg.DSN, scfg.Retention, scfg.PatternRetention = cfg.Postgres, cfg.Retention, cfg.PatternRetention
	scfg.Now, scfg.Registry, scfg.Logger = cfg.Now, cfg.Registry, log
	if cfg.Postgres != "" {
		pg, err := store.OpenPG(ctx, scfg)
		if err != nil {
			return nil, err
		}
		cp.Store, cp.PG = pg, pg
		log.Info("store: PostgreSQL")
	} else {
		mem, err := store.NewMem(scfg)
		if err != nil {
			return nil, err
		}
		cp.Store = mem
		log.Warn("store: embedded in-process store; NOT durable, everything is lost on exit (use --postgres)")
	}

	var backend cache.Cache
	if cfg.Redis != "" {
		r, err := cache.NewRedis(cache.RedisConfig{Addr: cfg.Redis})
		if err != nil {
			return nil, err
		}
		cp.redis, backend = r, r
		if err := r.Ping(ctx); err != nil {
			log.Warn("cache: Redis not reachable yet; reads fall through to the store", "err", err)
		}
		log.Info("cache: Redis", "addr", cfg.Redis)
	} else {
		backend = cache.NewMem()
		log.Warn("cache: embedded in-process cache; NOT shared or durable (use --redis)")
	}
	cp.Cache = cache.NewManager(cache.ManagerConfig{Cache: backend, Registry: cfg.Registry, Logger: log})

	if cfg.Consul != "" {
		client, err := kv.NewClient(cfg.Consul)
		if err != nil {
			return nil, err
		}
		cp.Consul, cp.KV = client, kv.NewConsul(client)
		cp.catalog, err = kv.NewCatalogWatcher(kv.WatcherConfig{Client: client, Logger: log, OnChange: cp.onCatalog})
		if err != nil {
			return nil, err
		}
		log.Info("kv and catalog: Consul", "addr", cfg.Consul)
	} else {
		cp.KV = kv.NewMem()
		log.Warn("kv: embedded in-process KV; NOT durable (use --consul); no service catalog")
	}

	cp.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	cp.Mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{Registry: cfg.Registry}))
	cp.Mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	cp.Mux.HandleFunc("GET /readyz", cp.readyz)
	return cp, nil
}

// Addr returns the HTTP listen address (useful with port 0).
func (cp *ControlPlane) Addr() string { return cp.ln.Addr().String() }

// Services returns the last known Consul service picture (nil without Consul).
func (cp *ControlPlane) Services() []kv.CatalogService {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]kv.CatalogService(nil), cp.services...)
}

func (cp *ControlPlane) onCatalog(s []kv.CatalogService) {
	cp.mu.Lock()
	prev := cp.services
	cp.services = s
	cp.mu.Unlock()
	cp.cfg.Logger.Info("service catalog changed", "instances", len(s))
	if cp.Processors != nil && cp.Processors.Lifecycle != nil {
		p := cp.Processors.Lifecycle
		if evs := catalogEvents(prev, s, cp.cfg.Now()); len(evs) > 0 {
			if err := p.ProcessLifecycle(context.Background(), evs); err != nil {
				cp.cfg.Logger.Warn("lifecycle processor failed on catalog change", "err", err)
			}
		}
	}
	for _, o := range cp.CatalogObservers {
		o(s)
	}
}

// readyz is ready when the store answers.
func (cp *ControlPlane) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if cp.PG != nil {
		if err := cp.PG.Pool().Ping(ctx); err != nil {
			http.Error(w, "store unreachable", http.StatusServiceUnavailable)
			return
		}
	}
	if !cp.ingested.Load() {
		http.Error(w, "ingest not running", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Run starts the ingest pipeline, the HTTP server, store maintenance, the
// catalog watcher and the components, and stops them all when ctx ends or
// one fails. It closes the control plane's resources before returning and
// returns nil on a clean stop.
func (cp *ControlPlane) Run(ctx context.Context) error {
	defer cp.Close()
	icfg := ingest.DefaultConfig()
	icfg.Bus, icfg.Group = cp.cfg.Bus, cp.cfg.Group
	icfg.Store = invalidatingWriter{w: cp.Store, cache: cp.Cache}
	if cp.Processors != nil {
		icfg.Processors = *cp.Processors
	}
	icfg.Observers = cp.Observers
	icfg.Registry, icfg.Logger, icfg.Tracer = cp.cfg.Registry, cp.cfg.Logger, cp.cfg.Tracer
	icfg.BatchSize, icfg.BatchWait = cp.cfg.BatchSize, cp.cfg.BatchWait
	icfg.FastBatchSize = min(icfg.FastBatchSize, icfg.BatchSize)
	icfg.QueueSize = max(icfg.QueueSize, icfg.BatchSize)
	in, err := ingest.New(icfg)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: cp.Mux, ReadHeaderTimeout: 10 * time.Second}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv.Protocols = &protos
	// Ping idle HTTP/2 connections so a sidecar's stream that went silent
	// without a reset (a partition, a dead peer) is closed and not counted.
	srv.HTTP2 = &http.HTTP2Config{SendPingTimeout: 20 * time.Second, PingTimeout: 10 * time.Second}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		cp.ingested.Store(true)
		defer cp.ingested.Store(false)
		return in.Run(gctx)
	})
	g.Go(func() error { return cp.Store.Run(gctx) })
	g.Go(func() error {
		err := srv.Serve(cp.ln)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve http: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cp.cfg.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	if cp.catalog != nil {
		g.Go(func() error { return cp.catalog.Run(gctx) })
	}
	for _, c := range cp.Components {
		g.Go(func() error { return c.Run(gctx) })
	}
	cp.cfg.Logger.Info("control plane running", "listen", cp.Addr(), "group", cp.cfg.Group)
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Close releases the store and cache connections and the listener. Run
// calls it; call it yourself only when Run is never called.
func (cp *ControlPlane) Close() {
	if cp.ln != nil {
		_ = cp.ln.Close()
	}
	if cp.Store != nil {
		cp.Store.Close()
	}
	if cp.redis != nil {
		_ = cp.redis.Close()
	}
}

// OperationStats returns the perf:{service}:{operation} view, read through
// the cache from the store.
func (cp *ControlPlane) OperationStats(ctx context.Context, service, operation string) (store.OpStats, error) {
	b, err := cp.Cache.GetOrLoad(ctx, cache.Perf, cache.Perf.Key(service, operation), func(ctx context.Context) ([]byte, error) {
		s, err := cp.Store.OperationStats(ctx, service, operation)
		if err != nil {
			return nil, err
		}
		return json.Marshal(s)
	})
	if err != nil {
		return store.OpStats{}, err
	}
	var s store.OpStats
	if err := json.Unmarshal(b, &s); err != nil {
		return store.OpStats{}, fmt.Errorf("decode cached operation stats: %w", err)
	}
	return s, nil
}
