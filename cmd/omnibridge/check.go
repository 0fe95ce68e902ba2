package main

import (
	"context"
	"errors"

	"github.com/omninode/bridge/internal/check"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

func init() { register(newCheckCmd) }

func newCheckCmd() *cobra.Command {
	cfg := check.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the bus, PostgreSQL, Redis, Consul and the sidecars' sync (pre-flight and health)",
		Long: `Check that OmniNode Bridge's dependencies answer and are ready: the bus
(brokers reachable; the four intelligence topics and the dead-letter topic
exist), PostgreSQL (reachable; migrations applied), Redis (PING), Consul
(a leader is elected) and, with --server, every sidecar's directive sync
state. Each check prints ✔ or ✘ (with a hint) or – (skipped: its address
was not given). The exit status is 1 when any check fails.

The flags read the same OMNIBRIDGE_* variables as the control plane, so in a
cluster this checks what the control plane uses:

  kubectl -n omnibridge exec deploy/omnibridge-controlplane -- omnibridge check`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfg.Bus.Brokers) == 0 && cfg.Postgres == "" && cfg.Redis == "" && cfg.Consul == "" && cfg.Server == "" {
				return errors.New("check: nothing to check: give --brokers, --postgres, --redis, --consul or --server")
			}
			// go-redis logs failed dials itself; the report already says it.
			redis.SetLogger(quietRedis{})
			report, err := check.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if _, err := report.WriteTo(cmd.OutOrStdout()); err != nil {
				return err
			}
			if !report.OK() {
				return exitError{1, ""}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Bus.Brokers, "brokers", nil, "Kafka/Redpanda seed brokers, host:port, comma-separated")
	f.StringVar(&cfg.Bus.SASLMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	f.StringVar(&cfg.Bus.SASLUser, "sasl-user", "", "SASL user")
	f.StringVar(&cfg.Bus.SASLPassword, "sasl-password", "", "SASL password")
	f.BoolVar(&cfg.Bus.TLS, "tls", false, "use TLS to the brokers")
	f.StringVar(&cfg.Bus.TLSCAFile, "tls-ca-file", "", "PEM CA bundle for the brokers")
	f.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL DSN")
	f.StringVar(&cfg.Redis, "redis", "", "Redis address host:port (or redis:// URL)")
	f.StringVar(&cfg.Consul, "consul", "", "Consul HTTP address host:port")
	f.StringVar(&cfg.Server, "server", "", "control plane URL, for the sidecars' sync status (empty: skipped)")
	f.StringVar(&cfg.Token, "token", "", "bearer token for --server (viewer role)")
	f.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "time limit of each check")
	return cmd
}

// quietRedis discards go-redis's own log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
