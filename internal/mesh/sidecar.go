package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/omninode/bridge/controlplane/kv"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/hooksig"
	"github.com/omninode/bridge/internal/mtls"
	"github.com/omninode/bridge/sidecar"
	sidecardirectives "github.com/omninode/bridge/sidecar/directives"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// SidecarConfig configures the assembled sidecar.
type SidecarConfig struct {
	// Base is the data plane's configuration. Base.ControlPlane turns the
	// directive client on; Base.Hooks is the public hook address.
	Base sidecar.Config
	// Upstreams are further endpoints of the service (other versions) that a
	// traffic-weights directive may route to; Base.Upstream is the default.
	Upstreams []string
	// TLS, when enabled, is the sidecar's certificate for mutual TLS to the
	// control plane (its SPIFFE identity must be for Base.Service).
	TLS mtls.Config
	// ControlPlaneServerName is checked against the control plane's
	// certificate; empty: the dialled host.
	ControlPlaneServerName string
	// Consul, when set, registers the instance in the Consul catalog with a
	// health check on the admin /readyz, and deregisters it on shutdown.
	Consul string
	// HooksSecrets, when set, require Standard Webhooks signatures on hooks.
	HooksSecrets []string
	// HooksInsecure allows unsigned hooks on a non-loopback address.
	HooksInsecure bool
	// DirectiveBackoffMax bounds the directive client's reconnect backoff;
	// default the client's.
	DirectiveBackoffMax time.Duration
}

// DefaultSidecarConfig returns the defaults.
func DefaultSidecarConfig() SidecarConfig { return SidecarConfig{Base: sidecar.DefaultConfig()} }

// Validate checks what sidecar.Config.Validate does not.
func (c SidecarConfig) Validate() error {
	if len(c.HooksSecrets) == 0 && !c.HooksInsecure && c.Base.Hooks != "" && !IsLoopback(c.Base.Hooks) {
		return fmt.Errorf("mesh: hooks on non-loopback %s need --hooks-secret (or --hooks-insecure)", c.Base.Hooks)
	}
	if c.TLS.Enabled() {
		if err := c.TLS.Validate(); err != nil {
			return fmt.Errorf("mesh: %w", err)
		}
		if c.Base.ControlPlane != "" && !strings.HasPrefix(c.Base.ControlPlane, "https://") {
			return fmt.Errorf("mesh: with --tls-* the control plane URL must be https://, not %s", c.Base.ControlPlane)
		}
	}
	for _, u := range c.Upstreams {
		if _, err := url.Parse(u); err != nil || !strings.HasPrefix(u, "http") {
			return fmt.Errorf("mesh: upstream %q is not an http(s) URL", u)
		}
	}
	return nil
}

// Sidecar is the assembled sidecar: the data plane, the policy engine shared
// between its proxy and the directive client, the directive client, Consul
// registration and signed hooks.
type Sidecar struct {
	SC      *sidecar.Sidecar
	Policy  *policy.Engine
	Client  *sidecardirectives.Client // nil without a control plane
	cfg     SidecarConfig
	log     *slog.Logger
	hooksLn net.Listener // public hook listener when signatures are checked
	hooks   http.Handler
}

// NewSidecar builds the sidecar and binds its listeners.
func NewSidecar(cfg SidecarConfig) (_ *Sidecar, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := cfg.Base
	log := base.Logger
	if log == nil {
		log = slog.Default()
	}
	if base.Registry == nil {
		base.Registry = newRegistry()
	}
	stateDir := base.StateDir
	if stateDir == "" {
		stateDir = base.SpoolDir
	}
	if base.Instance == "" && stateDir != "" {
		if base.Instance, err = meshInstanceID(stateDir, base.Service); err != nil {
			return nil, err
		}
	}
	s := &Sidecar{cfg: cfg, log: log}

	if base.Policy == nil {
		pcfg := policy.DefaultConfig()
		pcfg.Service = base.Service
		pcfg.Endpoints = append([]string{base.Upstream}, cfg.Upstreams...)
		pcfg.Registry, pcfg.Logger = base.Registry, log
		pcfg.OnSignal = func(sig *bridgev1.CriticalSignal) {
			if c := s.Client; c != nil {
				c.SendSignal(sig)
			}
		}
		if s.Policy, err = policy.New(pcfg); err != nil {
			return nil, fmt.Errorf("create policy engine: %w", err)
		}
		base.Policy = s.Policy
	} else {
		s.Policy = base.Policy
	}

	if base.ControlPlane != "" {
		dcfg := sidecardirectives.DefaultConfig()
		dcfg.ControlPlane, dcfg.Service, dcfg.Instance = base.ControlPlane, base.Service, base.Instance
		dcfg.Pod, dcfg.Namespace, dcfg.ServiceVersion = base.Pod, base.Namespace, base.Version
		dcfg.StateDir, dcfg.Registry, dcfg.Logger = stateDir, base.Registry, log
		if cfg.DirectiveBackoffMax > 0 {
			dcfg.BackoffMax = cfg.DirectiveBackoffMax
			dcfg.BackoffMin = min(dcfg.BackoffMin, cfg.DirectiveBackoffMax)
		}
		if cfg.TLS.Enabled() {
			src, err := mtls.NewSource(cfg.TLS)
			if err != nil {
				return nil, fmt.Errorf("load sidecar certificates: %w", err)
			}
			dcfg.HTTPClient = mtlsClient(src.ClientConfig(cfg.ControlPlaneServerName))
		}
		if s.Client, err = sidecardirectives.New(dcfg, s.Policy); err != nil {
			return nil, fmt.Errorf("create directive client: %w", err)
		}
		// The last acknowledged snapshot is in force before the proxy serves.
		if err := s.Client.LoadPersisted(); err != nil {
			log.Warn("persisted directives not loaded; starting with the static defaults", "err", err)
		}
		base.Components = append(base.Components, s.Client)
	}

	public := base.Hooks
	if len(cfg.HooksSecrets) > 0 {
		base.Hooks = "127.0.0.1:0" // the receiver itself; the verified listener is public
	}
	if s.SC, err = sidecar.New(base); err != nil {
		return nil, err
	}
	if len(cfg.HooksSecrets) > 0 {
		v, err := hooksig.New(hooksig.Config{Secrets: cfg.HooksSecrets, MaxBodyBytes: base.MaxHookBodyBytes, OnReject: hookRejects(base.Registry)})
		if err != nil {
			return nil, fmt.Errorf("create hook verifier: %w", err)
		}
		target := &url.URL{Scheme: "http", Host: s.SC.HooksAddr()}
		s.hooks = v.Wrap(httputil.NewSingleHostReverseProxy(target))
		if s.hooksLn, err = net.Listen("tcp", public); err != nil {
			return nil, fmt.Errorf("listen for hooks on %s: %w", public, err)
		}
	}
	if cfg.Consul != "" {
		client, err := kv.NewClient(cfg.Consul)
		if err != nil {
			return nil, err
		}
		host, port, _ := net.SplitHostPort(s.SC.ProxyAddr())
		p, _ := strconv.Atoi(port)
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = ""
		}
		reg := kv.ServiceRegistration{ID: base.Instance, Name: base.Service, Version: base.Version, Address: host, Port: p,
			HealthURL: "http://" + s.SC.AdminAddr() + "/readyz"}
		s.SC.Components = append(s.SC.Components, componentFunc(func(ctx context.Context) error { return kv.RegisterFor(ctx, client, reg) }))
	}
	return s, nil
}

// HooksAddr is the public hook address (verified when secrets are set).
func (s *Sidecar) HooksAddr() string {
	if s.hooksLn != nil {
		return s.hooksLn.Addr().String()
	}
	return s.SC.HooksAddr()
}

// Run serves until ctx ends; see sidecar.Sidecar.Run.
func (s *Sidecar) Run(ctx context.Context) error {
	if s.hooksLn == nil {
		return s.SC.Run(ctx)
	}
	srv := &http.Server{Handler: s.hooks, ReadHeaderTimeout: 10 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.SC.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(s.hooksLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve signed hooks: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}

type componentFunc func(context.Context) error

func (f componentFunc) Run(ctx context.Context) error { return f(ctx) }

// mtlsClient is an HTTP/2 client over mutual TLS for the directive stream.
func mtlsClient(cfg *tls.Config) *http.Client {
	var p http.Protocols
	p.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Protocols: &p, ForceAttemptHTTP2: true,
		HTTP2: &http.HTTP2Config{SendPingTimeout: 20 * time.Second, PingTimeout: 10 * time.Second}}}
}

func hookRejects(reg *prometheus.Registry) func(string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_hooks_signature_rejected_total",
		Help: "Hook requests refused by signature verification, by reason."}, []string{"reason"})
	if err := reg.Register(c); err != nil {
		return nil
	}
	return func(reason string) { c.WithLabelValues(reason).Inc() }
}

// meshInstanceID keeps one instance id per state directory, so the events
// and the directive stream name the same instance across restarts.
func meshInstanceID(dir, service string) (string, error) {
	path := filepath.Join(dir, "mesh-instance")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" && len(id) <= 253 {
			return id, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create state dir: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = service
	}
	id := host + "-" + uuid.NewString()[:8]
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write instance id: %w", err)
	}
	return id, nil
}
