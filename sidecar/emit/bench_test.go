package emit

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkEmitterLive measures the live path per event: Emit, encoding,
// producing to a kfake broker over TCP and the broker's acknowledgement
// (the timed loop waits for the last one). The broker runs in the same
// process, so ns/op and allocs/op include its share: compare runs on the
// same machine, not absolute numbers. The loop keeps at most 1,024 events
// unacknowledged so that every event takes the live path (none is
// spooled; the benchmark fails otherwise).
//
// stream emits as fast as it can, so the writer takes large batches;
// batch=1 waits until the writer handed each event to the producer before
// emitting the next, so every event is a batch of its own (the per-batch
// costs, such as a write syscall, are paid per event: the request path's
// case at a few thousand events per second).
func BenchmarkEmitterLive(b *testing.B) {
	b.Run("stream", func(b *testing.B) { benchmarkEmitterLive(b, false) })
	b.Run("batch=1", func(b *testing.B) { benchmarkEmitterLive(b, true) })
}

func benchmarkEmitterLive(b *testing.B, single bool) {
	kafka := testenv.Kafka(b)
	cfg := DefaultConfig()
	cfg.SpoolDir = b.TempDir()
	cfg.Bus = &bus.Config{Brokers: kafka.Brokers(), Linger: time.Millisecond}
	cfg.Logger = slog.New(slog.DiscardHandler)
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()

	src := bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i-bench"}, 0)
	ev := lifecycleEvent(src)
	waitDelivered := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for e.delivered.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("delivered %d of %d in 30s: %+v", e.delivered.Load(), n, e.Stats())
			}
			runtime.Gosched()
		}
	}
	e.Emit(ev) // connect before timing
	waitDelivered(1)

	const window = 1024
	var sent int64 = 1
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Emit(ev)
		sent++
		if single {
			for len(e.queue) > 0 || e.nInflight.Load()+e.delivered.Load() < sent {
				runtime.Gosched()
			}
		}
		if sent-e.delivered.Load() > window {
			waitDelivered(sent - window/2)
		}
	}
	waitDelivered(sent)
	b.StopTimer()
	if st := e.Stats(); st.Spooled != 0 || st.DroppedTotal() != 0 {
		b.Fatalf("the benchmark left the live path: %+v", st)
	}
}

// BenchmarkJournalAppend measures the journal's own cost per batch (frame
// encoding and one write syscall, no fsync) with realistic records (the
// encoding of a lifecycle event), releasing as it goes like the writer.
func BenchmarkJournalAppend(b *testing.B) {
	src := bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i-bench"}, 0)
	r, err := bus.Encode(lifecycleEvent(src))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			j, err := openJournal(b.TempDir(), journalSegBytes, 1<<30)
			if err != nil {
				b.Fatal(err)
			}
			defer j.close()
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = r
			}
			b.SetBytes(int64(len(appendFrame(nil, r)) * n))
			b.ReportAllocs()
			for b.Loop() {
				seg, end, err := j.append(recs)
				if err != nil {
					b.Fatal(err)
				}
				j.release(seg, end)
			}
		})
	}
}

// BenchmarkEmitterPaced measures the process's CPU time per event (user +
// system, reported as cpu-ns/event) at a request-path-like rate: 3 events
// per millisecond tick, so the writer takes batches of a few events and
// the per-batch costs (the journal's write syscall among them) count. The
// in-process broker's CPU is included: compare runs, not absolute numbers.
func BenchmarkEmitterPaced(b *testing.B) {
	kafka := testenv.Kafka(b)
	cfg := DefaultConfig()
	cfg.SpoolDir = b.TempDir()
	cfg.Bus = &bus.Config{Brokers: kafka.Brokers()}
	cfg.Logger = slog.New(slog.DiscardHandler)
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	src := bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i-bench"}, 0)
	ev := lifecycleEvent(src)
	waitDelivered := func(n int64) {
		for deadline := time.Now().Add(30 * time.Second); e.delivered.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("delivered %d of %d in 30s: %+v", e.delivered.Load(), n, e.Stats())
			}
		}
	}
	e.Emit(ev)
	waitDelivered(1)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	cpu0 := processCPU(b)
	var sent int64
	for b.Loop() {
		e.Emit(ev)
		if sent++; sent%3 == 0 {
			<-tick.C
		}
	}
	waitDelivered(sent + 1)
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(sent), "cpu-ns/event")
	if st := e.Stats(); st.Spooled != 0 || st.DroppedTotal() != 0 {
		b.Fatalf("the benchmark left the live path: %+v", st)
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
