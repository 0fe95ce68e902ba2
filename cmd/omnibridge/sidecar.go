package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/mesh"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

func init() { register(newSidecarCmd) }

func newSidecarCmd() *cobra.Command {
	mcfg := mesh.DefaultSidecarConfig()
	cfg := &mcfg.Base
	var brokers []string
	var logLevel string
	cmd := &cobra.Command{
		Use:   "sidecar",
		Short: "Run the sidecar in front of one service: proxy, hook receiver, MCP capture, event emission",
		Long: `Run the data plane next to one service. Clients reach the service through
--listen; the sidecar forwards to --upstream and emits one communication event
per request to the bus (--brokers), spooling to --spool-dir when the bus is
down (and, with no --brokers, spooling only). The service reports lifecycle
and executions to --hooks. --admin serves /livez, /readyz, /metrics and
/debug/state. Tracing exports over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

With --control-plane the sidecar keeps a directive stream to the control plane
and enforces what it receives (the last acknowledged snapshot, kept in
--state-dir, is in force from the start). With --tls-ca, --tls-cert and
--tls-key also authenticate the sidecar to the control plane (mutual TLS,
https:// control plane URL; the certificate's SPIFFE identity must name
--service). --upstreams lists further versions of the service that traffic
weights may route to. --consul registers the instance in the Consul catalog.
--hooks-secret requires Standard Webhooks signatures on hooks; a non-loopback
--hooks address needs one (or --hooks-insecure).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			// A spool smaller than the default segment gets segments of a
			// quarter of it, so a small --spool-max-bytes is not an error.
			if e := &cfg.Emitter; e.SegmentBytes > e.SpoolMaxBytes {
				e.SegmentBytes = max(1<<10, e.SpoolMaxBytes/4)
			}
			cfg.Logger = log
			if mcfg.TLS.CAFile != "" {
				mcfg.TLS.CertFile, mcfg.TLS.KeyFile = cfg.TLSCert, cfg.TLSKey
			}
			if len(brokers) > 0 {
				cfg.Bus = &bus.Config{Brokers: brokers, ClientID: "omnibridge-sidecar-" + cfg.Service}
			}
			tp, shutdownTP, err := tracerProvider(cmd.Context(), cfg.Service, cfg.Version)
			if err != nil {
				return err
			}
			defer shutdownTP()
			if tp != nil {
				cfg.TracerProvider = tp
			}
			sc, err := mesh.NewSidecar(mcfg)
			if err != nil {
				return err
			}
			return sc.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Service, "service", "", "name of the service behind the sidecar (required)")
	f.StringVar(&cfg.Version, "version-label", "", "version of the service (image tag, semver)")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "proxy listen address")
	f.StringVar(&cfg.Upstream, "upstream", "", "URL of the service, such as http://127.0.0.1:8080 (required)")
	f.StringSliceVar(&brokers, "brokers", nil, "bus brokers, host:port, comma-separated (empty: spool only)")
	f.StringVar(&cfg.Admin, "admin", cfg.Admin, "admin listen address (/livez, /readyz, /metrics, /debug/state)")
	f.StringVar(&cfg.Hooks, "hooks", cfg.Hooks, "hook receiver listen address")
	f.StringVar(&cfg.SpoolDir, "spool-dir", "", "directory of the on-disk event spool (required with --emit)")
	f.Int64Var(&cfg.Emitter.SpoolMaxBytes, "spool-max-bytes", cfg.Emitter.SpoolMaxBytes, "spool size cap in bytes; when full the newest events are dropped and counted")
	f.StringVar(&cfg.StateDir, "state-dir", "", "directory for the sequence mark, instance id and directives (default: --spool-dir)")
	f.StringVar(&cfg.ControlPlane, "control-plane", "", "control plane URL for directives (empty: none)")
	f.BoolVar(&cfg.MCP, "mcp", false, "capture MCP (streamable HTTP) traffic to the upstream")
	f.BoolVar(&cfg.Emit, "emit", true, "emit intelligence events (off for benchmarks)")
	f.StringVar(&cfg.Pod, "pod", os.Getenv("POD_NAME"), "Kubernetes pod name (default $POD_NAME)")
	f.StringVar(&cfg.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "Kubernetes namespace (default $POD_NAMESPACE)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate for a TLS proxy listener")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM key for a TLS proxy listener")
	f.StringVar(&cfg.HealthPath, "health-path", "", "upstream path probed with GET (empty: TCP connect)")
	f.DurationVar(&cfg.HealthInterval, "health-interval", cfg.HealthInterval, "upstream health probe interval")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "time to drain in-flight requests at shutdown")
	f.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", cfg.MaxHeaderBytes, "request header size limit (431 over it)")
	f.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "time to read request headers")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "idle client connection timeout")
	f.Int64Var(&cfg.MaxHookBodyBytes, "max-hook-body-bytes", cfg.MaxHookBodyBytes, "hook request body limit")
	f.StringSliceVar(&cfg.Routes, "routes", nil, "route templates tried before the heuristic, such as /orders/{id}")
	f.StringSliceVar(&mcfg.Upstreams, "upstreams", nil, "further upstream URLs (other versions) that traffic-weight directives may route to")
	f.StringVar(&mcfg.TLS.CAFile, "tls-ca", "", "PEM CA bundle of the control plane; with --tls-cert/--tls-key: mutual TLS on the directive stream")
	f.StringVar(&mcfg.ControlPlaneServerName, "control-plane-server-name", "", "name checked against the control plane's certificate (default: the URL's host)")
	f.StringVar(&mcfg.Consul, "consul", "", "Consul HTTP address host:port to register the instance in (empty: no registration)")
	f.StringSliceVar(&mcfg.HooksSecrets, "hooks-secret", nil, "Standard Webhooks secret(s) (whsec_...) required on hooks; several during rotation")
	f.BoolVar(&mcfg.HooksInsecure, "hooks-insecure", false, "allow unsigned hooks on a non-loopback --hooks address")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("parse log level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// tracerProvider exports over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// the traces-specific variable) is set, and samples as OTEL_TRACES_SAMPLER
// says when that is set. Otherwise it returns a nil provider: the proxy then
// makes trace ids and propagates traceparent itself, without SDK spans that
// would never be exported (the request path's cheapest mode). It sets the
// OTel globals (only main does).
func tracerProvider(ctx context.Context, service, version string) (*sdktrace.TracerProvider, func(), error) {
	exporting := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	if !exporting && strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")) == "" {
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
		return nil, func() {}, nil
	}
	opts := []sdktrace.TracerProviderOption{}
	if exporting {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("create otlp exporter: %w", err)
		}
		res, _ := sdkresource.Merge(sdkresource.Default(), sdkresource.NewSchemaless(
			semconv.ServiceName("omnibridge-sidecar"), semconv.ServiceNamespace(service), semconv.ServiceVersion(version)))
		opts = append(opts, sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5e9)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}, nil
}
