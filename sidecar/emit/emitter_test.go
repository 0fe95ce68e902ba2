package emit

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func lifecycleEvent(src *bus.Source) bus.Event {
	return &bridgev1.ServiceLifecycleEvent{
		Envelope:    src.Envelope(time.Now(), nil),
		EventType:   bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE,
		ServiceInfo: &bridgev1.ServiceInfo{Name: "orders"},
	}
}

func startEmitter(t *testing.T, mod func(*Config)) (*Emitter, func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.SpoolDir = t.TempDir()
	cfg.DeliveryTimeout = time.Second
	cfg.RetryInterval = 100 * time.Millisecond
	cfg.Registry = prometheus.NewRegistry()
	cfg.Logger = slog.New(slog.DiscardHandler)
	mod(&cfg)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(func() { cancel(); <-done })
	return e, stop
}

func TestEmitterDeliversToBroker(t *testing.T) {
	t.Parallel()
	kafka := testenv.Kafka(t)
	e, _ := startEmitter(t, func(c *Config) { c.Bus = &bus.Config{Brokers: kafka.Brokers(), Linger: time.Millisecond} })
	src := bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i-1"}, 0)
	const n = 2000
	start := time.Now()
	for range n {
		e.Emit(lifecycleEvent(src))
	}
	for e.Stats().Delivered < n {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("stats after 20s: %+v", e.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d events delivered in %v", n, time.Since(start))
}

func TestEmitterSpoolOnlyThenReplay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i-2"}, 0)
	e, stop := startEmitter(t, func(c *Config) { c.SpoolDir = dir })
	for range 100 {
		e.Emit(lifecycleEvent(src))
	}
	stop()
	if st := e.Stats(); st.Spooled != 100 || st.SpoolPending != 100 {
		t.Fatalf("spool-only stats %+v", st)
	}
	kafka := testenv.Kafka(t)
	e2, _ := startEmitter(t, func(c *Config) {
		c.SpoolDir = dir
		c.Bus = &bus.Config{Brokers: kafka.Brokers()}
	})
	deadline := time.Now().Add(20 * time.Second)
	for e2.Stats().Replayed < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("replay stats %+v", e2.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := e2.Stats(); st.SpoolPending != 0 || !st.BusLive {
		t.Fatalf("after replay %+v", st)
	}
}

// TestEmitterStopDuringOutage: the records the producer holds when the
// emitter stops during an outage (franz-go retries them for as long as the
// broker is down) are failed by the shutdown, spooled, and only then leave
// the journal: the clean stop leaves it empty and the spool holds every
// undelivered event, which the next run replays (none recovered from the
// journal, none lost, none dropped).
func TestEmitterStopDuringOutage(t *testing.T) {
	t.Parallel()
	kafka := testenv.Kafka(t)
	dir := t.TempDir()
	e, stop := startEmitter(t, func(c *Config) {
		c.SpoolDir = dir
		c.Bus = &bus.Config{Brokers: kafka.Brokers(), Linger: time.Millisecond}
		c.FlushTimeout = time.Second
	})
	src := bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i-3"}, 0)
	waitFor := func(e *Emitter, what string, cond func(Stats) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(e.Stats()); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, e.Stats())
			}
		}
	}
	emit := func(n int) {
		for range n {
			e.Emit(lifecycleEvent(src))
		}
	}
	emit(200)
	waitFor(e, "first 200 delivered", func(s Stats) bool { return s.Delivered == 200 })
	kafka.Stop(t)
	emit(200) // to the producer, which holds them
	waitFor(e, "bus counted as down", func(s Stats) bool { return !s.BusLive && s.Unwritten == 0 })
	if st := e.Stats(); st.JournalBytes == 0 || st.Spooled != 0 {
		t.Fatalf("with 200 records held by the producer: %+v; want them journaled, not spooled", st)
	}
	emit(100) // to the spool
	waitFor(e, "spooled while down", func(s Stats) bool { return s.Spooled == 100 && s.Unwritten == 0 })
	stop()
	st := e.Stats()
	if st.Spooled != 300 || st.SpoolPending != 300 || st.DroppedTotal() != 0 || st.Unwritten != 0 || st.JournalBytes != 0 {
		t.Fatalf("after a stop during the outage: %+v; want the 300 undelivered events spooled and the journal empty", st)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, journalDir)); err != nil || len(ents) != 0 {
		t.Fatalf("journal after a clean stop: %v, %v; want it empty", ents, err)
	}

	kafka.Start(t)
	e2, stop2 := startEmitter(t, func(c *Config) {
		c.SpoolDir = dir
		c.Bus = &bus.Config{Brokers: kafka.Brokers(), Linger: time.Millisecond}
	})
	waitFor(e2, "replayed", func(s Stats) bool { return s.Replayed == 300 && s.SpoolPending == 0 && s.BusLive })
	stop2()
	if st := e2.Stats(); st.Recovered != 0 || st.DroppedTotal() != 0 {
		t.Fatalf("second run: %+v; want nothing recovered from the journal after a clean stop", st)
	}
}
