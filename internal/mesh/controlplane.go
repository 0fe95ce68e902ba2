package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/omninode/bridge/controlplane"
	"github.com/omninode/bridge/controlplane/adminapi"
	"github.com/omninode/bridge/controlplane/analyze"
	"github.com/omninode/bridge/controlplane/directives"
	"github.com/omninode/bridge/controlplane/ingest"
	"github.com/omninode/bridge/controlplane/inject"
	"github.com/omninode/bridge/controlplane/intelapi"
	"github.com/omninode/bridge/controlplane/kv"
	"github.com/omninode/bridge/controlplane/optimize"
	"github.com/omninode/bridge/controlplane/ui"
	"github.com/omninode/bridge/internal/apiauth"
	"github.com/omninode/bridge/internal/mtls"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// ControlPlaneConfig configures the assembled control plane.
type ControlPlaneConfig struct {
	// Base is the pipeline's configuration (brokers, PostgreSQL, Redis,
	// Consul, group, retention). Base.Listen is the public address of the
	// APIs, the directive stream and the dashboard.
	Base controlplane.Config
	// APITokensFile holds "ROLE NAME TOKEN" lines; empty means an open API,
	// allowed only on a loopback listener unless InsecureOpenAPI.
	APITokensFile string
	// InsecureOpenAPI allows an open API on a non-loopback listener.
	InsecureOpenAPI bool
	// TLS, when enabled, serves the listener over TLS requiring client
	// certificates, and authorizes each sidecar for its own service only.
	TLS mtls.Config
	// InsecurePlaintext allows plaintext on a non-loopback listener (a
	// trusted network only); without it plaintext needs a loopback address.
	InsecurePlaintext bool
	// HealthListen serves only /metrics, /livez and /readyz, in plaintext
	// (for the kubelet's probes and Prometheus when the API listener
	// requires client certificates); default 127.0.0.1:0. The same paths
	// are also served on the API listener.
	HealthListen string
	// Webhook serves the sidecar injector when Webhook.Listen is set.
	Webhook WebhookConfig
	// Optimize, Directives and Analyze, when set, adjust those parts'
	// configurations after the wiring filled them (tuning, tests, the demo).
	Optimize   func(*optimize.Config)
	Directives func(*directives.Config)
	Analyze    func(*analyze.Config)
	// APICacheTTL is the intelligence API's cache TTL per family; default
	// APICacheTTL.
	APICacheTTL func(family string) time.Duration
	// Versions names the service version behind an upstream endpoint for the
	// optimizer's evidence; optional.
	Versions func(endpoint string) string
}

// WebhookConfig is the injector's admission webhook listener.
type WebhookConfig struct {
	// Listen is its address; empty: no webhook.
	Listen string
	// CertFile and KeyFile are its serving certificate; ClientCAFile, when
	// set, requires the API server's client certificate.
	CertFile, KeyFile, ClientCAFile string
	// Inject configures what is injected.
	Inject inject.Config
}

// DefaultControlPlaneConfig returns the defaults.
func DefaultControlPlaneConfig() ControlPlaneConfig {
	return ControlPlaneConfig{Base: controlplane.DefaultConfig(), Webhook: WebhookConfig{Inject: inject.DefaultConfig()}}
}

// Validate checks what the parts' own validation does not.
func (c ControlPlaneConfig) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if c.TLS.Enabled() {
		if err := c.TLS.Validate(); err != nil {
			return fmt.Errorf("mesh: %w", err)
		}
	} else if !IsLoopback(c.Base.Listen) && !c.InsecurePlaintext {
		return fmt.Errorf("mesh: plaintext is only served on loopback; %s needs --tls-cert, --tls-key and --tls-ca (or --insecure-plaintext on a trusted network)", c.Base.Listen)
	}
	if c.Webhook.Listen != "" && (c.Webhook.CertFile == "" || c.Webhook.KeyFile == "") {
		return errors.New("mesh: the injector webhook needs --webhook-cert and --webhook-key")
	}
	return nil
}

// ControlPlane is the assembled control plane: the pipeline with the
// analyzer as its processors, the intelligence API, the optimization engine,
// the directive server, the admin API and the dashboard on one listener.
type ControlPlane struct {
	CP         *controlplane.ControlPlane
	Analyzer   *analyze.Analyzer
	Intel      *intelapi.Server
	Engine     *optimize.Engine
	Directives *directives.Server
	Admin      *adminapi.Handler
	Stats      *RouteStats
	Registry   *prometheus.Registry

	cfg     ControlPlaneConfig
	log     *slog.Logger
	ln      net.Listener
	srv     *http.Server
	tls     bool
	authz   *serviceAuthz
	signals *signalPath
	webhook http.Handler
}

// NewControlPlane opens the parts and listens; Run serves.
func NewControlPlane(ctx context.Context, cfg ControlPlaneConfig) (_ *ControlPlane, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Base.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := cfg.Base.Registry
	if reg == nil {
		reg = newRegistry()
	}
	auth, err := newAuthenticator(cfg.APITokensFile, cfg.Base.Listen, cfg.InsecureOpenAPI, log)
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if cfg.TLS.Enabled() {
		src, err := mtls.NewSource(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("load control plane certificates: %w", err)
		}
		tlsCfg = src.ServerConfig()
	}

	inner := cfg.Base
	inner.Listen = cfg.HealthListen // metrics and health only; the APIs are on our listener
	if inner.Listen == "" {
		inner.Listen = "127.0.0.1:0"
	}
	inner.Registry, inner.Logger = reg, log
	cp, err := controlplane.New(ctx, inner)
	if err != nil {
		return nil, err
	}
	m := &ControlPlane{CP: cp, Registry: reg, cfg: cfg, log: log, tls: tlsCfg != nil,
		authz: &serviceAuthz{requireIdentity: tlsCfg != nil, log: log}}
	defer func() {
		if err != nil {
			cp.Close()
			if m.ln != nil {
				_ = m.ln.Close()
			}
		}
	}()

	// Analysis.
	acfg := analyze.DefaultConfig()
	acfg.Log, acfg.Registry = log, reg
	if cp.PG != nil {
		acfg.Pool, acfg.Source = cp.PG.Pool(), cp.PG
	}
	if cfg.Analyze != nil {
		cfg.Analyze(&acfg)
	}
	if m.Analyzer, err = analyze.New(acfg); err != nil {
		return nil, fmt.Errorf("create analyzer: %w", err)
	}
	cp.Processors = &ingest.Processors{Lifecycle: m.Analyzer, Execution: m.Analyzer, Communication: m.Analyzer, Tools: m.Analyzer}
	cp.CatalogObservers = append(cp.CatalogObservers, func(s []kv.CatalogService) { m.Analyzer.OnCatalog(catalogOf(s)) })

	// The closed loop.
	dcfg := directives.DefaultConfig()
	dcfg.KV, dcfg.Registry, dcfg.Logger = cp.KV, reg, log
	var sp *signalPath
	dcfg.OnSignal = func(ctx context.Context, svc string, sig *bridgev1CriticalSignal) { sp.fromStream(ctx, svc, sig) }
	if cfg.Directives != nil {
		cfg.Directives(&dcfg)
	}
	if m.Directives, err = directives.New(dcfg); err != nil {
		return nil, fmt.Errorf("create directive server: %w", err)
	}
	sp = newSignalPath(m.Directives)
	m.signals = sp
	m.Stats = NewRouteStats(RouteStatsConfig{Versions: cfg.Versions})
	ocfg := optimize.DefaultConfig()
	ocfg.Stats, ocfg.Publisher, ocfg.Modes, ocfg.Registry, ocfg.Logger = m.Stats, m.Directives, cp.KV, reg, log
	if cp.PG != nil {
		ocfg.Store = optimize.NewPGStore(cp.PG.Pool())
	} else {
		ocfg.Store = optimize.NewMemStore()
	}
	if cfg.Optimize != nil {
		cfg.Optimize(&ocfg)
	}
	if m.Engine, err = optimize.New(ocfg); err != nil {
		return nil, fmt.Errorf("create optimization engine: %w", err)
	}
	sp.eng.Store(m.Engine)
	if m.Admin, err = adminapi.New(adminapi.Config{Engine: m.Engine, Status: m.Directives, Logger: log}); err != nil {
		return nil, fmt.Errorf("create admin api: %w", err)
	}
	rejections, err := newRejections(reg, log)
	if err != nil {
		return nil, err
	}
	icfg := intelapi.DefaultConfig()
	icfg.Analyzer, icfg.Loop, icfg.Log, icfg.Registry = m.Analyzer, m.Admin, log, reg
	icfg.HandlerOptions = append(icfg.HandlerOptions, rejections.HandlerOption()) // innermost
	icfg.Cache = newAPICache(cp.Cache.Cache(), cfg.APICacheTTL)
	if m.Intel, err = intelapi.New(icfg); err != nil {
		return nil, fmt.Errorf("create intelligence api: %w", err)
	}
	cp.Observers = append(cp.Observers, m.Stats, m.Intel, sp)
	cp.Components = append(cp.Components, m.Analyzer, m.Engine, m.Directives, sp)

	// One listener: APIs, directive stream, dashboard, and the inner mux's
	// metrics and health.
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_api_refused_total",
		Help: "API requests refused by authentication or authorization, by reason."}, []string{"reason"})
	reg.MustRegister(refused)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "omnibridge_directive_streams_denied_total",
		Help: "Directive streams refused because the sidecar's certificate is for another service."},
		func() float64 { return float64(m.authz.denied.Load()) }))
	mux := http.NewServeMux()
	mux.Handle("/", cp.Mux)
	adminPath, adminH := m.Admin.Mount(rejections.HandlerOption())
	dirPath, dirH := m.Directives.Handler(connectInterceptors(m.authz), rejections.HandlerOption())
	intelapi.Mount(mux, m.Intel,
		intelapi.Service{Path: adminPath, Handler: withActor(adminH)},
		intelapi.Service{Path: dirPath, Handler: dirH})
	mux.Handle(ui.Prefix, ui.Handler())
	mux.Handle("GET /ui", ui.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(ui.Prefix, http.StatusFound))
	// Rejections sits in front of authentication to count its refusals too.
	handler := rejections.Middleware(withPeerIdentity(auth.Middleware(apiauth.ConnectRoles, func(reason string) { refused.WithLabelValues(reason).Inc() }, mux)))

	m.srv = directives.NewH2CServer(handler)
	m.srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug) // refused handshakes are routine
	if tlsCfg != nil {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		m.srv.Protocols = &p
		tlsCfg = tlsCfg.Clone()
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
		m.srv.TLSConfig = tlsCfg
	}
	if cfg.Webhook.Listen != "" {
		icfg := cfg.Webhook.Inject
		if icfg.Registry == nil {
			icfg.Registry = reg
		}
		if icfg.Logger == nil {
			icfg.Logger = log
		}
		if m.webhook, err = inject.Handler(icfg); err != nil {
			return nil, fmt.Errorf("create injector webhook: %w", err)
		}
	}
	if m.ln, err = net.Listen("tcp", cfg.Base.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Base.Listen, err)
	}
	if tlsCfg != nil {
		m.ln = tls.NewListener(m.ln, tlsCfg)
	}
	return m, nil
}

// Addr is the listener's address.
func (m *ControlPlane) Addr() string { return m.ln.Addr().String() }

// URL is the base URL of the APIs and the dashboard.
func (m *ControlPlane) URL() string {
	if m.tls {
		return "https://" + m.Addr()
	}
	return "http://" + m.Addr()
}

// TLS reports whether the listener requires mutual TLS.
func (m *ControlPlane) TLS() bool { return m.tls }

// Run serves until ctx ends, then stops every part and returns nil on a
// clean stop.
func (m *ControlPlane) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.CP.Run(gctx) })
	g.Go(func() error {
		err := m.srv.Serve(m.ln)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve api: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = m.srv.Shutdown(sctx)
		return nil
	})
	if m.webhook != nil {
		w := m.cfg.Webhook
		g.Go(func() error { return inject.Serve(gctx, w.Listen, w.CertFile, w.KeyFile, w.ClientCAFile, m.webhook) })
		m.log.Info("injector webhook serving", "listen", w.Listen, "client_ca", w.ClientCAFile != "")
	}
	m.log.Info("control plane APIs serving", "url", m.URL(), "dashboard", m.URL()+ui.Prefix, "mtls", m.tls, "health", m.CP.Addr())
	err := g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func catalogOf(s []kv.CatalogService) []analyze.CatalogService {
	out := make([]analyze.CatalogService, 0, len(s))
	for _, c := range s {
		out = append(out, analyze.CatalogService{Name: c.Name, Version: c.Version, Address: net.JoinHostPort(c.Address, fmt.Sprint(c.Port)), Healthy: c.Healthy})
	}
	return out
}
