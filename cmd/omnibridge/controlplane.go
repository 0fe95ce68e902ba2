package main

import (
	"log/slog"
	"os"

	"github.com/omninode/bridge/internal/mesh"
	"github.com/spf13/cobra"
)

func init() { register(newControlPlaneCmd) }

func newControlPlaneCmd() *cobra.Command {
	mcfg := mesh.DefaultControlPlaneConfig()
	cfg := &mcfg.Base
	var brokers []string
	var logLevel string
	cmd := &cobra.Command{
		Use:   "controlplane",
		Short: "Run the control plane: consume the event bus into PostgreSQL, Redis and Consul",
		Long: `Run the control plane. It consumes the four intelligence topics as a member of
a consumer group (more replicas in the same --group share the partitions),
stores the events in PostgreSQL, caches hot views in Redis and keeps desired
directive state in Consul KV. It analyzes the events, proposes and enforces
directives, and serves on --listen: the IntelligenceService, AdminService and
DirectiveService (Connect, gRPC, gRPC-Web), the dashboard at /ui/, /metrics,
/livez and /readyz.

Security: callers of the APIs authenticate with a bearer token from
--api-tokens-file (lines "ROLE NAME TOKEN", ROLE viewer or admin); without it
the API is open, which is allowed only on a loopback --listen (or with
--insecure-open-api). With --tls-cert, --tls-key and --tls-ca the listener
requires mutual TLS and each sidecar may only sync the directives of the
service named in its certificate's SPIFFE identity; plaintext is served only
on loopback (or with --insecure-plaintext). --webhook-listen serves the
sidecar injector's admission webhook over TLS.

Without --postgres, --redis or --consul the matching part runs embedded in
the process: it works the same but is NOT durable (lost on exit).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			cfg.Bus.Brokers = brokers
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cp, err := mesh.NewControlPlane(cmd.Context(), mcfg)
			if err != nil {
				return err
			}
			return cp.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&brokers, "brokers", []string{"127.0.0.1:9092"}, "Kafka/Redpanda seed brokers, host:port, comma-separated")
	f.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL DSN (empty: embedded non-durable store)")
	f.StringVar(&cfg.Redis, "redis", "", "Redis address host:port (empty: embedded cache)")
	f.StringVar(&cfg.Consul, "consul", "", "Consul HTTP address host:port (empty: embedded KV, no catalog)")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTP listen address for metrics, health and APIs")
	f.StringVar(&cfg.Group, "group", cfg.Group, "consumer group shared by the control-plane replicas")
	f.DurationVar(&cfg.Retention, "retention", cfg.Retention, "how long detailed events are kept")
	f.DurationVar(&cfg.PatternRetention, "pattern-retention", cfg.PatternRetention, "how long intelligence patterns are kept")
	f.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "largest routine-lane batch written at once")
	f.DurationVar(&cfg.BatchWait, "batch-wait", cfg.BatchWait, "how long the routine lane waits to fill a batch")
	f.StringVar(&cfg.Bus.ClientID, "client-id", "omnibridge-controlplane", "Kafka client id")
	f.StringVar(&cfg.Bus.SASLMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	f.StringVar(&cfg.Bus.SASLUser, "sasl-user", "", "SASL user")
	f.StringVar(&cfg.Bus.SASLPassword, "sasl-password", "", "SASL password")
	f.BoolVar(&cfg.Bus.TLS, "tls", false, "use TLS to the brokers")
	f.StringVar(&cfg.Bus.TLSCAFile, "tls-ca-file", "", "PEM CA bundle for the brokers")
	f.StringVar(&mcfg.APITokensFile, "api-tokens-file", "", `API bearer tokens, lines "ROLE NAME TOKEN" (empty: open API, loopback only)`)
	f.BoolVar(&mcfg.InsecureOpenAPI, "insecure-open-api", false, "allow an open API (no tokens) on a non-loopback listener")
	f.StringVar(&mcfg.TLS.CertFile, "tls-cert", "", "PEM certificate of the API listener (mutual TLS with --tls-key and --tls-ca)")
	f.StringVar(&mcfg.TLS.KeyFile, "tls-key", "", "PEM key of the API listener")
	f.StringVar(&mcfg.TLS.CAFile, "tls-ca", "", "PEM CA bundle that signs sidecar and client certificates")
	f.BoolVar(&mcfg.InsecurePlaintext, "insecure-plaintext", false, "serve plaintext on a non-loopback listener (trusted networks only)")
	f.StringVar(&mcfg.HealthListen, "health-listen", "", "plaintext address of /metrics, /livez and /readyz only, for probes when --listen requires mTLS (default: a loopback port)")
	inj := &mcfg.Webhook.Inject
	f.StringVar(&inj.Image, "sidecar-image", inj.Image, "sidecar image the injector adds")
	f.StringVar(&inj.InitImage, "init-image", inj.InitImage, "iptables init container image the injector adds")
	f.StringVar(&inj.Brokers, "sidecar-brokers", inj.Brokers, "bus brokers the injected sidecars use, comma-separated")
	f.StringVar(&inj.ControlPlane, "sidecar-control-plane", inj.ControlPlane, "control plane URL the injected sidecars use")
	f.StringVar(&mcfg.Webhook.Listen, "webhook-listen", "", "address of the injector admission webhook (empty: none)")
	f.StringVar(&mcfg.Webhook.CertFile, "webhook-cert", "", "PEM serving certificate of the webhook")
	f.StringVar(&mcfg.Webhook.KeyFile, "webhook-key", "", "PEM key of the webhook")
	f.StringVar(&mcfg.Webhook.ClientCAFile, "webhook-client-ca", "", "PEM CA of the API server's client certificate (only it may call the webhook)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
