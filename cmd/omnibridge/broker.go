package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/omninode/bridge/internal/bus"
	"github.com/spf13/cobra"
)

func init() { register(newBrokerCmd) }

func newBrokerCmd() *cobra.Command {
	cfg := bus.BrokerConfig{}
	var partitions int
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run an embedded Kafka-protocol broker (franz-go's kfake) with the four topics",
		Long: `Run franz-go's kfake as a standalone Kafka-protocol broker for local use and
tests. It creates the four intelligence topics and the dead-letter topic, and
persists records and group offsets to --data-dir (in memory only when empty).
It is a development broker: one node, no replication. Use Redpanda or Kafka in
production.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Partitions = int32(partitions)
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			b, err := bus.StartBroker(cfg)
			if err != nil {
				return err
			}
			durability := "in memory only (non-durable)"
			if cfg.DataDir != "" {
				durability = "persisted to " + cfg.DataDir
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker listening on %v, topics %v, %s\n", b.Addrs(), bus.AllTopics, durability)
			log.Info("broker started", "addrs", b.Addrs())
			err = b.Run(cmd.Context())
			log.Info("broker stopped")
			return err
		},
	}
	cmd.Flags().StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "TCP address to listen on")
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", "", "directory to persist records and offsets to (empty: memory only)")
	cmd.Flags().IntVar(&partitions, "partitions", 6, "partitions per topic")
	cmd.Flags().BoolVar(&cfg.SyncWrites, "sync-writes", false, "fsync every write to --data-dir")
	return cmd
}
