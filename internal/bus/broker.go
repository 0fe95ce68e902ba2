package bus

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig configures an embedded Kafka-protocol broker (franz-go's kfake).
type BrokerConfig struct {
	// Listen is the TCP address, host:port; default 127.0.0.1:9092. Port 0 picks a free one.
	Listen string
	// DataDir persists topics, records and group offsets; empty keeps them in
	// memory only (lost on exit).
	DataDir string
	// Partitions per topic for the four intelligence topics; default 6.
	Partitions int32
	// SyncWrites fsyncs every write to DataDir (crash safety at a throughput cost).
	SyncWrites bool
	// Extra kfake options (SASL users, TLS), for tests and secure setups.
	Extra []kfake.Opt
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
}

// StartBroker starts an embedded broker and creates the four intelligence
// topics and the dead-letter topic.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9092"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 6
	}
	if cfg.Partitions < 1 || cfg.Partitions > 1000 {
		return nil, fmt.Errorf("broker: partitions %d out of range 1..1000", cfg.Partitions)
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("broker: listen %q: bad port", cfg.Listen)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.SeedTopics(cfg.Partitions, AllTopics...),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
		kfake.AllowAutoTopicCreation(),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	opts = append(opts, cfg.Extra...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start: %w", err)
	}
	return &Broker{cluster: c}, nil
}

// Addrs returns the broker's listen addresses.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Cluster exposes the kfake cluster for tests.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker; with a DataDir its state is saved.
func (b *Broker) Close() { b.cluster.Close() }

// Run blocks until ctx ends, then closes the broker. It returns nil on a clean stop.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	b.Close()
	return nil
}
