package kv

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/sync/errgroup"
)

// CatalogService is one service instance as the catalog and its health
// checks describe it.
type CatalogService struct {
	Name    string
	ID      string
	Version string // from Meta["version"], else a "version=<v>" or "v<digits>..." tag
	Address string
	Port    int
	Healthy bool // every check of the instance (and its node) is passing
}

// WatcherConfig configures a CatalogWatcher.
type WatcherConfig struct {
	// Client reaches Consul. Required.
	Client *api.Client
	// OnChange receives the whole picture, sorted by name then id, each time
	// it changes. It is called from one goroutine at a time. Required.
	OnChange func([]CatalogService)
	// WaitTime bounds each blocking query; default 30s.
	WaitTime time.Duration
	// RetryMin and RetryMax bound the backoff after a failed query; defaults 200ms and 10s.
	RetryMin, RetryMax time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// CatalogWatcher follows the Consul catalog and health with blocking queries.
type CatalogWatcher struct {
	cfg WatcherConfig

	mu   sync.Mutex
	last []CatalogService
	have bool
}

// NewCatalogWatcher validates cfg and returns a watcher; Run starts it.
func NewCatalogWatcher(cfg WatcherConfig) (*CatalogWatcher, error) {
	if cfg.Client == nil || cfg.OnChange == nil {
		return nil, errors.New("kv: catalog watcher needs a client and an OnChange callback")
	}
	if cfg.WaitTime == 0 {
		cfg.WaitTime = 30 * time.Second
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 200 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &CatalogWatcher{cfg: cfg}, nil
}

// Services returns the last known picture and whether there is one yet. It
// is kept while Consul is unreachable.
func (w *CatalogWatcher) Services() ([]CatalogService, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]CatalogService(nil), w.last...), w.have
}

// Run watches until ctx ends. Two blocking queries, on the service list and
// on health state, each trigger a rebuild of the picture; failures back off
// and keep the last picture. It returns nil on a clean stop.
func (w *CatalogWatcher) Run(ctx context.Context) error {
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return w.block(ctx, "catalog services", poke, func(q *api.QueryOptions) (uint64, error) {
			_, meta, err := w.cfg.Client.Catalog().Services(q)
			if err != nil {
				return 0, err
			}
			return meta.LastIndex, nil
		})
	})
	g.Go(func() error {
		return w.block(ctx, "health state", poke, func(q *api.QueryOptions) (uint64, error) {
			_, meta, err := w.cfg.Client.Health().State(api.HealthAny, q)
			if err != nil {
				return 0, err
			}
			return meta.LastIndex, nil
		})
	})
	g.Go(func() error {
		backoff := w.cfg.RetryMin
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-trigger:
			}
			for {
				err := w.rebuild(ctx)
				if err == nil || ctx.Err() != nil {
					backoff = w.cfg.RetryMin
					break
				}
				w.cfg.Logger.Warn("consul catalog unreachable; keeping the last service picture", "err", err, "retry_in", backoff)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, w.cfg.RetryMax)
			}
		}
	})
	return g.Wait()
}

// block runs a blocking query in a loop and pokes when its index moves.
func (w *CatalogWatcher) block(ctx context.Context, what string, poke func(), query func(*api.QueryOptions) (uint64, error)) error {
	var index uint64
	backoff := w.cfg.RetryMin
	for ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: w.cfg.WaitTime, AllowStale: true}).WithContext(ctx)
		next, err := query(q)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.cfg.Logger.Debug("consul blocking query failed", "query", what, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, w.cfg.RetryMax)
			index = 0 // Consul may have restarted with a new index
			continue
		}
		backoff = w.cfg.RetryMin
		if next != index || index == 0 {
			poke()
		}
		if next < index {
			next = 0 // the index went backwards: start over
		}
		index = next
	}
	return nil
}

// rebuild reads every service's instances with their health and reports the
// picture when it changed.
func (w *CatalogWatcher) rebuild(ctx context.Context) error {
	q := (&api.QueryOptions{AllowStale: true}).WithContext(ctx)
	names, _, err := w.cfg.Client.Catalog().Services(q)
	if err != nil {
		return err
	}
	out := []CatalogService{}
	for name := range names {
		if name == "consul" {
			continue
		}
		entries, _, err := w.cfg.Client.Health().Service(name, "", false, q)
		if err != nil {
			return err
		}
		for _, e := range entries {
			addr := e.Service.Address
			if addr == "" && e.Node != nil {
				addr = e.Node.Address
			}
			out = append(out, CatalogService{
				Name: e.Service.Service, ID: e.Service.ID, Version: version(e.Service),
				Address: addr, Port: e.Service.Port,
				Healthy: e.Checks.AggregatedStatus() == api.HealthPassing,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].ID < out[j].ID
	})
	w.mu.Lock()
	changed := !w.have || !reflect.DeepEqual(out, w.last)
	w.last, w.have = out, true
	w.mu.Unlock()
	if changed {
		w.cfg.OnChange(append([]CatalogService{}, out...))
	}
	return nil
}

// version reads a service's version from its meta or tags.
func version(s *api.AgentService) string {
	if v := s.Meta["version"]; v != "" {
		return v
	}
	for _, t := range s.Tags {
		if v, ok := strings.CutPrefix(t, "version="); ok {
			return v
		}
	}
	for _, t := range s.Tags {
		if len(t) > 1 && t[0] == 'v' && t[1] >= '0' && t[1] <= '9' {
			return t[1:]
		}
	}
	return ""
}
