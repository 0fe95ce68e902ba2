package main

import (
	"log/slog"
	"os"

	"github.com/omninode/bridge/controlplane"
	"github.com/spf13/cobra"
)

func init() { register(newControlPlaneCmd) }

func newControlPlaneCmd() *cobra.Command {
	cfg := controlplane.DefaultConfig()
	var brokers []string
	var logLevel string
	cmd := &cobra.Command{
		Use:   "controlplane",
		Short: "Run the control plane: consume the event bus into PostgreSQL, Redis and Consul",
		Long: `Run the control plane. It consumes the four intelligence topics as a member of
a consumer group (more replicas in the same --group share the partitions),
stores the events in PostgreSQL, caches hot views in Redis and keeps desired
directive state in Consul KV, and serves /metrics, /livez, /readyz and the
control-plane APIs on --listen (HTTP/1.1 and HTTP/2 cleartext).

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
			cp, err := controlplane.New(cmd.Context(), cfg)
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
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
