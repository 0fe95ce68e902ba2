package main

import (
	"log/slog"
	"os"

	"github.com/omninode/bridge/internal/mesh"
	"github.com/spf13/cobra"
)

func init() { register(newDevCmd) }

func newDevCmd() *cobra.Command {
	cfg := mesh.DefaultDevConfig()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: embedded broker, control plane, dashboard (and with --demo, a demo mesh)",
		Long: `Run OmniNode Bridge in one process with no servers installed: the embedded
Kafka-protocol broker (persisted in --data-dir), the control plane with its
embedded store, cache and KV (or the real ones given with --postgres, --redis,
--consul, --brokers), and the dashboard at http://LISTEN/ui/. The API is open,
so --listen must be a loopback address. It prints what runs where, then stays
up until interrupted.

With --demo it also starts demo services (a storefront calling orders, with a
v2 canary, calling inventory and payments; an MCP catalog server), each behind
its own real sidecar, sends them traffic and injects faults on a schedule
(a flaky dependency, a slow release, a bad canary, a failing MCP tool). The
terminal shows a live summary of the loop; --duration stops it with a final
report of what was detected and changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Out = cmd.OutOrStdout()
			return mesh.RunDev(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.Demo, "demo", false, "run the demo services, sidecars, traffic and faults")
	f.DurationVar(&cfg.Duration, "duration", 0, "stop after this long and print the final report (0: until interrupted)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory of the embedded broker's data and the demo's spools (default: the user cache dir/omnibridge/dev)")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "loopback address of the APIs and the dashboard")
	f.StringSliceVar(&cfg.Brokers, "brokers", nil, "use these Kafka/Redpanda brokers instead of the embedded one")
	f.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL DSN (empty: embedded non-durable store)")
	f.StringVar(&cfg.Redis, "redis", "", "Redis address host:port (empty: embedded cache)")
	f.StringVar(&cfg.Consul, "consul", "", "Consul HTTP address host:port (empty: embedded KV, no catalog)")
	f.Float64Var(&cfg.TimeScale, "time-scale", cfg.TimeScale, "multiply the demo's fault schedule and loop windows by this (0.5: twice as fast)")
	f.Float64Var(&cfg.TrafficRate, "traffic-rate", cfg.TrafficRate, "demo user requests per second")
	f.Float64Var(&cfg.HotRate, "hot-rate", cfg.HotRate, "requests per second of the demo's hot read path (negative: off)")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}
