package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Upstream is one instance behind a service's front.
type Upstream struct {
	// Instance name, such as "orders-v2".
	Instance string
	// URL of the instance itself.
	URL string
	// Version it serves.
	Version string
	// Weight is its initial share of the service's traffic, relative to the others.
	Weight uint32
}

// FrontEnd is what a Front callback started for a service.
type FrontEnd struct {
	// URL the other services call the service at (its sidecar's proxy).
	URL string
	// HooksURL is the base URL of the sidecar's hook receiver, which the
	// service reports its executions to; empty disables hooks.
	HooksURL string
}

// FrontFunc starts a front (a sidecar) for a service whose instances are
// upstreams and returns where others should call it. Most services have one
// upstream; orders has two (v1 and the v2 canary), so that a traffic-weights
// directive at its sidecar can shift traffic between them.
type FrontFunc func(service string, upstreams []Upstream) (FrontEnd, error)

// Topology starts the demo mesh on 127.0.0.1 free ports.
type Topology struct {
	// Front inserts a sidecar in front of each service. Nil: services call each
	// other directly, and a small weighted splitter stands in front of orders.
	Front FrontFunc
	// Faults are the knobs the services read; nil makes a fresh set.
	Faults *Faults
	// CanaryWeight is the initial weight of orders v2 against 100 - CanaryWeight
	// for v1; default 20.
	CanaryWeight uint32
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Registry, when set, receives the services' request counters.
	Registry *prometheus.Registry
}

// Deployment is a started topology.
type Deployment struct {
	// Instances maps an instance name ("storefront", "orders-v1", "orders-v2",
	// "inventory", "payments", "catalog") to its own URL.
	Instances map[string]string
	// Fronts maps a service name to the URL the others call it at.
	Fronts map[string]string
	// Entry is where traffic enters: the storefront's front.
	Entry string
	// MCP is the catalog MCP endpoint through its front.
	MCP string
	// Faults are the knobs of the running services.
	Faults *Faults

	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// Wait blocks until every service stopped (after the context given to Start
// ends) and returns their errors.
func (d *Deployment) Wait() error {
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return errors.Join(d.errs...)
}

type instanceSpec struct {
	instance, service, version string
	deps                       []string
	build                      func(Config) (*Service, error)
}

var specs = []instanceSpec{
	{"inventory", "inventory", "v1", nil, NewInventory},
	{"payments", "payments", "v1", nil, NewPayments},
	{"catalog", "catalog", "v1", []string{"inventory", "payments"}, NewCatalog},
	{"orders-v1", "orders", "v1", []string{"inventory", "payments"}, NewOrders},
	{"orders-v2", "orders", "v2", []string{"inventory", "payments"}, NewOrders},
	{"storefront", "storefront", "v1", []string{"orders", "catalog"}, NewStorefront},
}

// Services lists the demo's service names in start order (leaves first).
func Services() []string { return []string{"inventory", "payments", "catalog", "orders", "storefront"} }

// Start listens for every instance, starts the fronts, then serves. The
// services run until ctx ends; call Wait to collect them.
func (t Topology) Start(ctx context.Context) (_ *Deployment, err error) {
	log := t.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	faults := t.Faults
	if faults == nil {
		faults = &Faults{}
	}
	canary := t.CanaryWeight
	if canary == 0 {
		canary = 20
	}
	if canary > 100 {
		return nil, fmt.Errorf("canary weight %d: must be 0 to 100", canary)
	}
	var metrics *Metrics
	if t.Registry != nil {
		if metrics, err = NewMetrics(t.Registry); err != nil {
			return nil, err
		}
	}
	d := &Deployment{Instances: map[string]string{}, Fronts: map[string]string{}, Faults: faults}
	listeners := map[string]net.Listener{}
	defer func() {
		if err != nil {
			for _, ln := range listeners {
				_ = ln.Close()
			}
		}
	}()
	var lc net.ListenConfig
	for _, sp := range specs {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", sp.instance, err)
		}
		listeners[sp.instance] = ln
		d.Instances[sp.instance] = "http://" + ln.Addr().String()
	}
	upstreams := map[string][]Upstream{}
	for _, sp := range specs {
		w := uint32(100)
		if sp.service == "orders" {
			w = 100 - canary
			if sp.version != "v1" {
				w = canary
			}
		}
		upstreams[sp.service] = append(upstreams[sp.service], Upstream{Instance: sp.instance, URL: d.Instances[sp.instance], Version: sp.version, Weight: w})
	}
	hooks := map[string]string{}
	for _, svc := range Services() {
		ups := upstreams[svc]
		if t.Front == nil {
			if len(ups) == 1 {
				d.Fronts[svc] = ups[0].URL
				continue
			}
			u, err := d.split(ctx, ups, listeners)
			if err != nil {
				return nil, err
			}
			d.Fronts[svc] = u
			continue
		}
		fe, err := t.Front(svc, ups)
		if err != nil {
			return nil, fmt.Errorf("start front for %s: %w", svc, err)
		}
		if fe.URL == "" {
			return nil, fmt.Errorf("start front for %s: empty URL", svc)
		}
		d.Fronts[svc], hooks[svc] = fe.URL, fe.HooksURL
	}
	built := map[string]*Service{}
	for _, sp := range specs {
		cfg := Config{Deps: map[string]string{}, HooksURL: hooks[sp.service], Version: sp.version, Faults: faults, Logger: log.With("instance", sp.instance), Metrics: metrics}
		for _, dep := range sp.deps {
			cfg.Deps[dep] = d.Fronts[dep]
		}
		s, err := sp.build(cfg)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", sp.instance, err)
		}
		built[sp.instance] = s
	}
	for _, sp := range specs {
		s, ln := built[sp.instance], listeners[sp.instance]
		d.wg.Go(func() {
			if err := s.Serve(ctx, ln); err != nil {
				d.mu.Lock()
				d.errs = append(d.errs, err)
				d.mu.Unlock()
			}
		})
	}
	d.Entry = d.Fronts["storefront"]
	d.MCP = d.Fronts["catalog"] + MCPPath
	log.Debug("demo topology started", "entry", d.Entry, "instances", d.Instances)
	return d, nil
}

// split serves a weighted random reverse proxy over ups, for runs without sidecars.
func (d *Deployment) split(ctx context.Context, ups []Upstream, listeners map[string]net.Listener) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen splitter: %w", err)
	}
	listeners["splitter-"+ups[0].Instance] = ln
	var total uint32
	proxies := make([]*httputil.ReverseProxy, len(ups))
	for i, u := range ups {
		target, err := url.Parse(u.URL)
		if err != nil {
			return "", fmt.Errorf("parse upstream %s: %w", u.URL, err)
		}
		proxies[i] = &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host },
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				http.Error(w, "splitter: "+err.Error(), http.StatusBadGateway)
			},
		}
		total += u.Weight
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rand.Uint32N(max(total, 1))
		for i, u := range ups {
			if n < u.Weight || i == len(ups)-1 {
				proxies[i].ServeHTTP(w, r)
				return
			}
			n -= u.Weight
		}
	})
	s := &Service{Name: "splitter", handler: h, cfg: Config{}.withDefaults(), hooks: newHookReporter("", slog.New(slog.DiscardHandler))}
	d.wg.Go(func() { _ = s.Serve(ctx, ln) })
	return "http://" + ln.Addr().String(), nil
}
