package ingest_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The control plane killed mid-batch and restarted: nothing lost, nothing twice.
func TestKilledMidBatchRestarted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	cfg := e.ingestConfig(rec)
	var writes atomic.Int64
	cfg.Store = slowWriter{w: e.store, delay: 30 * time.Millisecond, writes: &writes}
	e.produce(t, 2000)
	stop := run(t, cfg)
	waitFor(t, 20*time.Second, "a few batches", func() bool { return writes.Load() >= 3 })
	stop() // cancels in the middle of the next batch's write
	n, _ := rec.counts()
	if n >= 2000 {
		t.Fatalf("all %d events processed before the kill; the test did not kill mid-stream", n)
	}
	e.produce(t, 500)
	cfg2 := e.ingestConfig(rec)
	run(t, cfg2)
	e.checkExactlyOnce(t, rec)
}

// A second replica joins and leaves mid-stream; the two share the partitions.
func TestSecondReplicaJoinsAndLeaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := newRecorder(), newRecorder()
	run(t, e.ingestConfig(a))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { // steady load
		defer close(done)
		for ctx.Err() == nil {
			e.produce(t, 50)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	stopB := run(t, e.ingestConfig(b))
	waitFor(t, 30*time.Second, "replica b to process events", func() bool { n, _ := b.counts(); return n > 100 })
	stopB()
	time.Sleep(time.Second)
	cancel()
	<-done
	e.checkExactlyOnce(t, a, b)
	na, _ := a.counts()
	nb, _ := b.counts()
	t.Logf("replica a processed %d, replica b %d", na, nb)
}

// PostgreSQL stopped under load: the consumer pauses, commits nothing, then
// catches up when it is back. Not parallel: it stops the shared server.
func TestPostgresDownUnderLoad(t *testing.T) {
	e := newEnv(t)
	rec := newRecorder()
	cfg := e.ingestConfig(rec)
	reg := prometheus.NewRegistry()
	cfg.Registry = reg
	run(t, cfg)
	e.produce(t, 500)
	waitFor(t, 30*time.Second, "the first events", func() bool { n, _ := rec.counts(); return n == 500 })
	waitFor(t, 10*time.Second, "the first commit", func() bool { return committed(t, e.kafka.Brokers(), cfg.Group) == 500 })

	e.pg.Stop(t)
	restarted := false
	defer func() {
		if !restarted {
			e.pg.Start(t)
		}
	}()
	e.produce(t, 1000)
	time.Sleep(2 * time.Second)
	if got := committed(t, e.kafka.Brokers(), cfg.Group); got != 500 {
		t.Fatalf("committed %d while PostgreSQL was down, want 500", got)
	}
	if n, _ := rec.counts(); n != 500 {
		t.Fatalf("%d events processed while PostgreSQL was down", n)
	}
	if v := gauge(t, reg, "omnibridge_ingest_paused"); v != 1 {
		t.Fatalf("paused gauge = %v while the store fails", v)
	}
	e.pg.Start(t)
	restarted = true
	e.produce(t, 300)
	e.checkExactlyOnce(t, rec)
	waitFor(t, 10*time.Second, "commits to catch up", func() bool { return committed(t, e.kafka.Brokers(), cfg.Group) == 1800 })
}

func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func counter(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
