package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/ingest"
	"github.com/omninode/bridge/controlplane/store"
	"github.com/omninode/bridge/controlplane/store/storetest"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stamper is an observer that counts stored events and records how long
// after its occurred_at each one was stored.
type stamper struct {
	n    atomic.Int64
	mu   sync.Mutex
	lags []time.Duration
}

func (s *stamper) Observe(ev bus.Event, _ bool) {
	lag := time.Since(ev.GetEnvelope().GetOccurredAt().AsTime())
	s.mu.Lock()
	s.lags = append(s.lags, lag)
	s.mu.Unlock()
	s.n.Add(1)
}

// benchPipeline starts PostgreSQL, the broker, a store and an ingest with
// the default configuration, and returns a producer and the observer.
func benchPipeline(b *testing.B) (*kgo.Client, *stamper) {
	b.Helper()
	kafka, pg := testenv.Kafka(b), testenv.PostgreSQL(b)
	scfg := store.DefaultConfig()
	scfg.DSN = pg.DSN()
	scfg.Logger = logger()
	st, err := store.OpenPG(context.Background(), scfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	opts, err := bus.Config{Brokers: kafka.Brokers()}.ProducerOpts()
	if err != nil {
		b.Fatal(err)
	}
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(prod.Close)
	obs := &stamper{}
	cfg := ingest.DefaultConfig()
	cfg.Bus = bus.Config{Brokers: kafka.Brokers()}
	cfg.Store = st
	cfg.Observers = []ingest.Observer{obs}
	cfg.Registry = prometheus.NewRegistry()
	cfg.Logger = logger()
	in, err := ingest.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return prod, obs
}

func encodeAll(b *testing.B, evs []bus.Event) []*kgo.Record {
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		r, err := bus.Encode(ev)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = r
	}
	return recs
}

func waitStored(b *testing.B, obs *stamper, n int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for obs.n.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("stored %d of %d events in %s", obs.n.Load(), n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkIngestThroughput produces a backlog of events to the broker and
// measures events/s from the broker through the ingest into PostgreSQL
// (until the observers saw every event stored).
func BenchmarkIngestThroughput(b *testing.B) {
	prod, obs := benchPipeline(b)
	// Warm up: the group has joined and partitions exist once one event is stored.
	if err := prod.ProduceSync(context.Background(), encodeAll(b, storetest.NewGen(1).Batch(1))...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	waitStored(b, obs, 1, 30*time.Second)
	n := max(b.N, 20_000)
	recs := encodeAll(b, storetest.NewGen(64).Batch(n))
	base := obs.n.Load()
	start := time.Now()
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	waitStored(b, obs, base+int64(n), 3*time.Minute)
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkIngestLatency produces events at fixed rates (4 s each) and
// reports occurred_at → stored p50 and p99 in ms and the achieved rate.
func BenchmarkIngestLatency(b *testing.B) {
	for _, rate := range []int{5000, 25000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { ingestLatency(b, rate) })
	}
}

func ingestLatency(b *testing.B, rate int) {
	const secs = 4
	prod, obs := benchPipeline(b)
	if err := prod.ProduceSync(context.Background(), encodeAll(b, storetest.NewGen(1).Batch(1))...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	waitStored(b, obs, 1, 30*time.Second)
	obs.mu.Lock()
	obs.lags = obs.lags[:0]
	obs.mu.Unlock()
	base := obs.n.Load()
	gen := storetest.NewGen(64)
	b.ResetTimer()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for sent < rate*secs {
		<-tick.C
		due := min(int(time.Since(start).Seconds()*float64(rate)), rate*secs)
		for ; sent < due; sent++ {
			r, err := bus.Encode(gen.Next())
			if err != nil {
				b.Fatal(err)
			}
			prod.Produce(context.Background(), r, nil)
		}
	}
	waitStored(b, obs, base+int64(sent), 2*time.Minute)
	obs.mu.Lock()
	lags := slices.Clone(obs.lags)
	obs.mu.Unlock()
	slices.Sort(lags)
	ms := func(q float64) float64 { return float64(lags[int(q*float64(len(lags)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "events/s")
}
