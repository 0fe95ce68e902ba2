package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startUpstream serves h on loopback with HTTP/1.1 and h2c.
func startUpstream(tb testing.TB, h http.Handler) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

type running struct {
	*Sidecar
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startSidecar runs a sidecar in front of upstream; it is stopped when tb ends.
func startSidecar(tb testing.TB, upstream string, brokers []string, mod func(*Config)) *running {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Service = "orders"
	cfg.Version = "1.2.3"
	cfg.Upstream = upstream
	cfg.Listen, cfg.Admin, cfg.Hooks = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SpoolDir = tb.TempDir()
	cfg.HealthInterval = 200 * time.Millisecond
	cfg.DrainTimeout = 2 * time.Second
	cfg.Emitter.DeliveryTimeout = time.Second
	cfg.Emitter.RetryInterval = 100 * time.Millisecond
	cfg.Emitter.FlushTimeout = 2 * time.Second
	if len(brokers) > 0 {
		cfg.Bus = &bus.Config{Brokers: brokers, Linger: time.Millisecond}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Sidecar: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	tb.Cleanup(func() { r.stop(tb) })
	return r
}

func (r *running) stop(tb testing.TB) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				tb.Errorf("sidecar run: %v", err)
			}
		case <-time.After(20 * time.Second):
			tb.Errorf("sidecar did not stop")
		}
	})
}

// collector consumes the bus topics from the start and keeps every event.
type collector struct {
	mu     sync.Mutex
	events []bus.Event
	raw    [][]byte // every record's value and header values
	ids    map[string]int
	bad    []error
}

func collect(tb testing.TB, brokers []string) *collector {
	tb.Helper()
	c := &collector{ids: map[string]int{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(bus.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				ev, err := bus.Decode(r)
				c.mu.Lock()
				c.raw = append(c.raw, r.Value, r.Key)
				for _, h := range r.Headers {
					c.raw = append(c.raw, h.Value)
				}
				if err != nil {
					c.bad = append(c.bad, err)
				} else {
					c.events = append(c.events, ev)
					c.ids[ev.GetEnvelope().GetEventId()]++
				}
				c.mu.Unlock()
			})
		}
	}()
	tb.Cleanup(func() { cancel(); <-done; cl.Close() })
	return c
}

// comm waits for the communication event with the given correlation id.
func (c *collector) comm(tb testing.TB, corr string) *bridgev1.CommunicationIntelligenceEvent {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, ev := range c.events {
			if ce, ok := ev.(*bridgev1.CommunicationIntelligenceEvent); ok && ce.GetCorrelationId() == corr {
				c.mu.Unlock()
				return ce
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("no communication event with correlation id %q", corr)
	return nil
}

func (c *collector) lifecycle(tb testing.TB, typ bridgev1.LifecycleEventType) *bridgev1.ServiceLifecycleEvent {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, ev := range c.events {
			if le, ok := ev.(*bridgev1.ServiceLifecycleEvent); ok && le.GetEventType() == typ {
				c.mu.Unlock()
				return le
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("no lifecycle event %v", typ)
	return nil
}

func (c *collector) snapshot() (n int, dups int, ids map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids = make(map[string]int, len(c.ids))
	for k, v := range c.ids {
		ids[k] = v
		if v > 1 {
			dups++
		}
	}
	return len(c.events), dups, ids
}

func newCorr(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// count returns the number of lifecycle events of a type.
func (c *collector) count(typ bridgev1.LifecycleEventType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.events {
		if le, ok := ev.(*bridgev1.ServiceLifecycleEvent); ok && le.GetEventType() == typ {
			n++
		}
	}
	return n
}
