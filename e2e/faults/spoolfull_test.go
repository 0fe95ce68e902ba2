package faults

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar"
)

// TestSpoolFullDropsAreCounted: a broker outage longer than the spool can
// hold. The sidecar keeps proxying; once its (deliberately tiny, 64 KiB)
// spool is full it drops the newest events and counts each one as
// spool_full; when the broker is back the spool is replayed. Every event
// is then either on the bus or counted, and the sequence gaps are exactly
// the drops. The sidecar runs in-process here (the binary has no flag for
// the spool's segment size), which also checks that it leaves no goroutine
// behind when it stops.
func TestSpoolFullDropsAreCounted(t *testing.T) {
	noLeaks(t)
	kafka := startKafka(t)
	col := collect(t, kafka.Brokers())
	cfg := sidecar.DefaultConfig()
	cfg.Service, cfg.Upstream = "ledger", startUpstream(t, nil)
	cfg.Listen, cfg.Admin, cfg.Hooks = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SpoolDir = filepath.Join(t.TempDir(), "spool")
	cfg.Bus = &bus.Config{Brokers: kafka.Brokers(), Linger: time.Millisecond}
	cfg.Emitter.SpoolMaxBytes, cfg.Emitter.SegmentBytes = 64<<10, 16<<10
	cfg.Emitter.DeliveryTimeout, cfg.Emitter.RetryInterval = time.Second, 100*time.Millisecond
	cfg.HealthInterval = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	sc, err := sidecar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sidecar run: %v", err)
		}
	})
	w := watch(t)
	l := startLoad(t, 300, "/orders/", "http://"+sc.ProxyAddr())
	time.Sleep(time.Second)
	kafka.Stop(t)
	deadline := time.Now().Add(20 * time.Second)
	for sc.EmitStats().Dropped["spool_full"] < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("the spool never filled: %+v", sc.EmitStats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	kafka.Start(t)
	time.Sleep(time.Second)
	generated := l.stopped()
	deadline = time.Now().Add(30 * time.Second)
	for st := sc.EmitStats(); st.SpoolPending > 0 || st.QueueDepth > 0 || st.Delivered+st.DroppedTotal() < st.Emitted; st = sc.EmitStats() {
		if time.Now().After(deadline) {
			t.Fatalf("sidecar did not settle: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := sc.EmitStats()
	instance := ""
	for _, k := range col.events() {
		if k.kind == kindComm {
			instance = k.instance
			break
		}
	}
	var state struct {
		Sequence uint64 `json:"sequence"`
	}
	getJSON(t, "http://"+sc.AdminAddr()+"/debug/state", &state)
	led := &ledger{scenario: "broker down, spool full (64 KiB)", generated: generated, dropped: map[string]int64{}}
	for r, n := range st.Dropped {
		if n > 0 {
			led.dropped[r] = n
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		led.stored, led.missing, led.gaps, led.jumps, led.firstMiss = 0, 0, nil, 0, nil
		seqs := map[string][]uint64{}
		for _, k := range col.events() {
			if k.instance != instance {
				continue
			}
			seqs[k.instance] = append(seqs[k.instance], k.seq)
			if k.kind == kindComm {
				led.stored++
			}
		}
		led.addSequences(seqs, map[string]uint64{instance: state.Sequence})
		if led.stored+led.droppedTotal() >= generated || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	led.peakRSS = w.peaks()
	led.note = "spooled " + itoa(st.Spooled) + ", replayed " + itoa(st.Replayed)
	led.check(t)
	if led.dropped["spool_full"] == 0 || st.Replayed == 0 {
		t.Errorf("want drops counted as spool_full and a replay: %+v", st)
	}
	if n := l.failed.Load() + l.non2xx.Load(); n != 0 {
		t.Errorf("%d proxied requests failed while the spool was full", n)
	}
}
