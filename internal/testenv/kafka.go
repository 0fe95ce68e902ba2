package testenv

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The bus topics, mirrored here because internal/bus can't be imported yet;
// keep them in step with it.
var busTopics = []string{
	"hooks.service_lifecycle",
	"hooks.execution_intelligence",
	"proxy.communication_intelligence",
	"tools.registration_events",
	"omnibridge.deadletter",
}

// busPartitions is the partition count of every seeded topic.
const busPartitions = 3

// KafkaCluster is an in-process kfake cluster owned by one caller, reached over TCP
// on 127.0.0.1. (It can't be named Kafka: the constructor has that name.)
type KafkaCluster struct {
	mu      sync.Mutex // guards cluster and serializes Start and Stop
	opts    []kfake.Opt
	ports   []int
	cluster *kfake.Cluster // nil while stopped
}

// Kafka starts a kfake cluster for this caller (each call its own cluster)
// with one broker and the bus topics seeded with 3 partitions each. It
// persists to a DataDir under tb.TempDir(), so records and committed offsets
// survive Stop and Start. opts are applied after those defaults and win over
// them: kfake.DataDir(dir) moves the data, kfake.NumBrokers(n) adds brokers.
// The cluster is closed when tb ends.
func Kafka(tb testing.TB, opts ...kfake.Opt) *KafkaCluster {
	tb.Helper()
	k := &KafkaCluster{opts: append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DataDir(tb.TempDir()),
		kfake.SeedTopics(busPartitions, busTopics...),
	}, opts...)}
	c, err := kfake.NewCluster(k.opts...)
	if err != nil {
		tb.Fatalf("testenv: start kfake: %v", err)
	}
	for _, addr := range c.ListenAddrs() {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			c.Close()
			tb.Fatalf("testenv: kfake address %q: %v", addr, err)
		}
		port, _ := strconv.Atoi(p)
		k.ports = append(k.ports, port)
	}
	k.cluster = c
	tb.Cleanup(k.close)
	return k
}

// Brokers returns the seed brokers, "127.0.0.1:PORT" each. They don't change
// across Stop and Start.
func (k *KafkaCluster) Brokers() []string {
	out := make([]string, len(k.ports))
	for i, p := range k.ports {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out
}

// Cluster returns the running cluster, for kfake's fault controls; nil while
// stopped. Start replaces it.
func (k *KafkaCluster) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cluster
}

// Stop closes the cluster; it saves its state to the data directory first.
func (k *KafkaCluster) Stop(tb testing.TB) {
	tb.Helper()
	k.close()
}

// Start starts a new cluster on the same ports and data directory, which
// reloads what the stopped one saved. It is a no-op while running.
func (k *KafkaCluster) Start(tb testing.TB) {
	tb.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cluster != nil {
		return
	}
	c, err := kfake.NewCluster(slices.Concat(k.opts, []kfake.Opt{kfake.Ports(k.ports...)})...)
	if err != nil {
		tb.Fatal(fmt.Errorf("testenv: restart kfake on %v: %w", k.ports, err))
	}
	k.cluster = c
}

func (k *KafkaCluster) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cluster != nil {
		k.cluster.Close()
		k.cluster = nil
	}
}
