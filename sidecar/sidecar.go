// Package sidecar assembles the data plane that runs next to one service:
// the transparent proxy (sidecar/proxy), the hook receiver (sidecar/hooks),
// MCP capture (sidecar/mcp), the never-blocking emitter (sidecar/emit), the
// upstream health prober, the admin listener, and the components passed in
// (the directive client). It owns their lifecycle: start, readiness, and
// the ordered shutdown (stop accepting, drain, emit service_stopped, flush).
//
// It runs without the control plane, the bus or anything else reachable:
// nothing here may make a proxied request wait for them.
package sidecar

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/emit"
	"github.com/omninode/bridge/sidecar/hooks"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/omninode/bridge/sidecar/proxy"
	"github.com/omninode/bridge/sidecar/redact"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Sidecar is the assembled data plane. Build it with New, run it with Run.
type Sidecar struct {
	// Components run alongside the sidecar's own parts (from Config.Components;
	// more may be appended before Run).
	Components []Component

	cfg Config
	log *slog.Logger
	reg *prometheus.Registry
	red *redact.Redactor
	src *bus.Source
	seq *seqState
	// runStart is the last sequence number used before this run: its first
	// event is runStart+1.
	runStart uint64
	emitter  *emit.Emitter // nil with emission off
	sink     hooks.Sink
	proxy    *proxy.Proxy
	prober   *prober
	// mcpCapture is set with MCP on; shutdown drains its parsing of the
	// last responses before the emitter flushes.
	mcpCapture interface{ Drain(context.Context) error }
	upstream   *url.URL

	proxyLn, adminLn, hooksLn    net.Listener
	proxySrv, adminSrv, hooksSrv *http.Server

	ready  atomic.Bool
	health atomic.Int32 // bridgev1.HealthStatus
}

// New builds the sidecar and binds its listeners (so Addr works before Run).
func New(cfg Config) (_ *Sidecar, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sidecar{cfg: cfg, log: cfg.Logger, reg: cfg.Registry, Components: cfg.Components}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if s.cfg.Policy == nil {
		s.cfg.Policy = &policy.Engine{}
	}
	if s.cfg.StateDir == "" {
		s.cfg.StateDir = cfg.SpoolDir
	}
	if s.cfg.StateDir == "" {
		s.cfg.StateDir = "."
	}
	s.upstream, _ = url.Parse(cfg.Upstream)
	if s.red, err = redact.New(cfg.Redact); err != nil {
		return nil, fmt.Errorf("create redactor: %w", err)
	}

	var start uint64
	if s.seq, start, err = loadSequence(s.cfg.StateDir); err != nil {
		return nil, err
	}
	instance := cfg.Instance
	if instance == "" {
		if instance, err = instanceID(s.cfg.StateDir, cfg.Service); err != nil {
			return nil, err
		}
	}
	s.src = bus.NewSourceWithCounter(&bridgev1.Source{
		Service: cfg.Service, Version: cfg.Version, Instance: instance, Pod: cfg.Pod, Namespace: cfg.Namespace,
	}, s.seq.counter)
	s.runStart = start

	s.sink = nopSink{}
	if cfg.Emit {
		ec := cfg.Emitter
		ec.Bus, ec.SpoolDir, ec.Registry, ec.Logger = cfg.Bus, cfg.SpoolDir, s.reg, s.log
		if s.emitter, err = emit.New(ec); err != nil {
			return nil, fmt.Errorf("create emitter: %w", err)
		}
		s.sink = s.emitter
	}

	var middleware func(http.Handler) http.Handler
	if cfg.MCP {
		if middleware, err = s.mcpMiddleware(); err != nil {
			return nil, err
		}
	}
	pc := proxy.DefaultConfig()
	pc.Service, pc.Upstream, pc.Source, pc.Redactor = cfg.Service, s.upstream, s.src, s.red
	pc.Policy, pc.Middleware, pc.MCP, pc.Routes = s.cfg.Policy, middleware, cfg.MCP, cfg.Routes
	pc.TracerProvider, pc.Registry, pc.Logger = cfg.TracerProvider, s.reg, s.log
	if cfg.Emit {
		pc.Sink = s.sink
	}
	if s.proxy, err = proxy.New(pc); err != nil {
		return nil, fmt.Errorf("create proxy: %w", err)
	}
	hs, err := hooks.New(hooks.Config{
		Service: cfg.Service, MaxBodyBytes: cfg.MaxHookBodyBytes, Registry: s.reg, Logger: s.log,
	}, s.src, s.sink, s.red)
	if err != nil {
		return nil, fmt.Errorf("create hook receiver: %w", err)
	}
	s.prober = newProber(s.upstream, cfg.HealthPath, cfg.HealthTimeout)

	defer func() {
		if err != nil {
			s.closeListeners()
		}
	}()
	if s.proxyLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen proxy: %w", err)
	}
	if s.adminLn, err = net.Listen("tcp", cfg.Admin); err != nil {
		return nil, fmt.Errorf("listen admin: %w", err)
	}
	if s.hooksLn, err = net.Listen("tcp", cfg.Hooks); err != nil {
		return nil, fmt.Errorf("listen hooks: %w", err)
	}
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	s.proxySrv = &http.Server{
		Handler:           s.proxy,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ConnContext:       proxy.ConnContext,
		ErrorLog:          errLog,
		Protocols:         new(http.Protocols),
	}
	s.proxySrv.Protocols.SetHTTP1(true)
	s.proxySrv.Protocols.SetHTTP2(true)
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load tls certificate: %w", err)
		}
		s.proxySrv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		// The proxy terminates TLS itself, to count failed handshakes and
		// the requests Go's HTTP parser refuses (proxy/refusal.go).
		s.proxyLn = s.proxy.TLSListener(s.proxyLn, s.proxySrv.TLSConfig, cfg.ReadHeaderTimeout)
	} else {
		s.proxySrv.Protocols.SetUnencryptedHTTP2(true)
		s.proxyLn = s.proxy.Listener(proxy.FramingListener(s.proxyLn))
	}
	s.hooksSrv = &http.Server{Handler: hs.Handler(), ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout, ErrorLog: errLog}
	s.adminSrv = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: cfg.ReadHeaderTimeout, ErrorLog: errLog}
	return s, nil
}

func (s *Sidecar) closeListeners() {
	for _, l := range []net.Listener{s.proxyLn, s.adminLn, s.hooksLn} {
		if l != nil {
			_ = l.Close()
		}
	}
}

// ProxyAddr, AdminAddr and HooksAddr are the bound listener addresses.
func (s *Sidecar) ProxyAddr() string { return s.proxyLn.Addr().String() }
func (s *Sidecar) AdminAddr() string { return s.adminLn.Addr().String() }
func (s *Sidecar) HooksAddr() string { return s.hooksLn.Addr().String() }

// Registry returns the registry holding the sidecar's metrics.
func (s *Sidecar) Registry() *prometheus.Registry { return s.reg }

// EmitStats returns the emitter's counters (zero with emission off).
func (s *Sidecar) EmitStats() emit.Stats {
	if s.emitter == nil {
		return emit.Stats{}
	}
	return s.emitter.Stats()
}

// Run serves until ctx ends, then shuts down in order: not ready, stop
// accepting and drain in-flight requests (DrainTimeout), emit
// service_stopped, flush the emitter (to the bus, else the spool), persist
// the sequence. It returns nil on a clean stop.
func (s *Sidecar) Run(ctx context.Context) error {
	emitCtx, stopEmit := context.WithCancel(context.Background())
	defer stopEmit()
	emitDone := make(chan struct{})
	if s.emitter != nil {
		go func() { defer close(emitDone); _ = s.emitter.Run(emitCtx) }()
		if s.cfg.Bus == nil {
			s.log.Warn("no brokers configured: events are spooled only", "spool_dir", s.cfg.SpoolDir)
		}
	} else {
		close(emitDone)
		s.log.Warn("event emission is off")
	}

	st, reason := s.prober.probe(ctx)
	s.health.Store(int32(st))
	s.lifecycle(bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, st, bridgev1.HealthStatus_HEALTH_STATUS_UNSPECIFIED, reason)

	g, gctx := errgroup.WithContext(ctx)
	serve := func(name string, srv *http.Server, l net.Listener) {
		g.Go(func() error {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve %s: %w", name, err)
			}
			return nil
		})
	}
	serve("proxy", s.proxySrv, s.proxyLn)
	serve("hooks", s.hooksSrv, s.hooksLn)
	serve("admin", s.adminSrv, s.adminLn)
	g.Go(func() error { return s.runHealth(gctx) })
	g.Go(func() error { return s.seq.run(gctx, s.src) })
	for _, c := range s.Components {
		g.Go(func() error { return c.Run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	s.ready.Store(true)
	s.log.Info("sidecar started", "service", s.cfg.Service, "proxy", s.ProxyAddr(), "upstream", s.upstream.Redacted(),
		"admin", s.AdminAddr(), "hooks", s.HooksAddr(), "mcp", s.cfg.MCP, "emit", s.cfg.Emit,
		"sequence_from", s.runStart+1, "sequence_resumed", s.seq.resumed)
	err := g.Wait()

	s.lifecycle(bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED,
		bridgev1.HealthStatus(s.health.Load()), bridgev1.HealthStatus_HEALTH_STATUS_UNSPECIFIED, "sidecar stopped")
	stopEmit()
	<-emitDone
	if werr := s.seq.write(s.src.Sequence()); werr != nil {
		err = errors.Join(err, werr)
	}
	s.log.Info("sidecar stopped")
	return err
}

func (s *Sidecar) shutdown() {
	s.ready.Store(false)
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if err := s.proxySrv.Shutdown(drainCtx); err != nil {
		s.log.Warn("drain cut short by the deadline; closing connections", "timeout", s.cfg.DrainTimeout)
		_ = s.proxySrv.Close()
	}
	if s.mcpCapture != nil {
		if err := s.mcpCapture.Drain(drainCtx); err != nil {
			s.log.Warn("mcp capture drain cut short", "err", err)
		}
	}
	if err := s.hooksSrv.Shutdown(drainCtx); err != nil {
		_ = s.hooksSrv.Close()
	}
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	if err := s.adminSrv.Shutdown(actx); err != nil {
		_ = s.adminSrv.Close()
	}
}

// lifecycle emits a lifecycle event about the service behind the sidecar.
func (s *Sidecar) lifecycle(typ bridgev1.LifecycleEventType, health, prev bridgev1.HealthStatus, reason string) {
	if s.emitter == nil {
		return
	}
	s.sink.Emit(&bridgev1.ServiceLifecycleEvent{
		Envelope:  s.src.Envelope(time.Now(), nil),
		EventType: typ,
		ServiceInfo: &bridgev1.ServiceInfo{
			Name:      s.cfg.Service,
			Version:   s.cfg.Version,
			Endpoints: []*bridgev1.Endpoint{{Url: s.red.URL(s.upstream), Protocol: "http"}},
		},
		IntelligenceMetadata: &bridgev1.LifecycleIntelligenceMetadata{
			DiscoveryMethod:       bridgev1.DiscoveryMethod_DISCOVERY_METHOD_PROXY,
			RegistrationAutomatic: true,
			CapabilityExtraction:  "observed_routes",
		},
		Health:         health,
		PreviousHealth: prev,
		HealthReason:   truncate(s.red.String(reason), 1024),
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

type nopSink struct{}

func (nopSink) Emit(bus.Event) {}
