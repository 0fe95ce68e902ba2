package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omninode/bridge/controlplane/analyze"
	"github.com/omninode/bridge/controlplane/ingest"
	"github.com/omninode/bridge/controlplane/store"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// controlPlane is the control plane's event path, in process: ingest (a
// consumer group on the communication topic) writing to the PostgreSQL store
// and handing new events to the analyzer. A tap observes both steps.
type controlPlane struct {
	broker []string
	st     *store.PG
	an     *analyze.Analyzer
	tap    *tap
	cancel context.CancelFunc
	wg     sync.WaitGroup
	runErr atomic.Value
}

// tap counts events as the ingest stores them (an ingest.Observer) and as
// the analyzer receives them (wrapping its CommunicationProcessor), and
// records their age from emission when asked to.
type tap struct {
	an       *analyze.Analyzer
	stored   atomic.Int64
	analyzed atomic.Int64
	record   atomic.Bool
	mu       sync.Mutex
	stLat    []time.Duration
	anLat    []time.Duration
}

func (t *tap) Observe(ev bus.Event, _ bool) {
	if t.record.Load() {
		d := time.Since(ev.GetEnvelope().GetOccurredAt().AsTime())
		t.mu.Lock()
		t.stLat = append(t.stLat, d)
		t.mu.Unlock()
	}
	t.stored.Add(1)
}

func (t *tap) ProcessCommunications(ctx context.Context, evs []*bridgev1.CommunicationIntelligenceEvent) error {
	err := t.an.ProcessCommunications(ctx, evs)
	if t.record.Load() {
		now := time.Now()
		t.mu.Lock()
		for _, ev := range evs {
			t.anLat = append(t.anLat, now.Sub(ev.GetEnvelope().GetOccurredAt().AsTime()))
		}
		t.mu.Unlock()
	}
	t.analyzed.Add(int64(len(evs)))
	return err
}

func startControlPlane(ctx context.Context, dsn string, brokers []string) (*controlPlane, error) {
	quiet := slog.New(slog.DiscardHandler)
	sc := store.DefaultConfig()
	sc.DSN, sc.MaxConns, sc.Logger = dsn, 8, quiet
	st, err := store.OpenPG(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	ac := analyze.DefaultConfig()
	ac.Pool, ac.Log = st.Pool(), quiet
	an, err := analyze.New(ac)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("create analyzer: %w", err)
	}
	t := &tap{an: an}
	ic := ingest.DefaultConfig()
	ic.Bus = bus.Config{Brokers: brokers, ClientID: "bench-controlplane"}
	ic.Group = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	ic.Topics = []string{bus.TopicCommunication}
	ic.Store = st
	ic.Processors = ingest.Processors{Lifecycle: an, Execution: an, Communication: t, Tools: an}
	ic.Observers = []ingest.Observer{t}
	ic.Logger = quiet
	ing, err := ingest.New(ic)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("create ingest: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	cp := &controlPlane{broker: brokers, st: st, an: an, tap: t, cancel: cancel}
	for name, run := range map[string]func(context.Context) error{"analyzer": an.Run, "ingest": ing.Run} {
		cp.wg.Go(func() {
			if err := run(rctx); err != nil && rctx.Err() == nil {
				cp.runErr.CompareAndSwap(nil, fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	// Warm up: the group must have joined and the day partitions exist.
	if _, _, err := cp.throughput(ctx, 500); err != nil {
		cp.close()
		return nil, fmt.Errorf("warm up control plane: %w", err)
	}
	return cp, nil
}

func (cp *controlPlane) brokers() []string { return cp.broker }

func (cp *controlPlane) close() {
	cp.cancel()
	cp.wg.Wait()
	cp.st.Close()
}

func (cp *controlPlane) err() error {
	e, _ := cp.runErr.Load().(error)
	return e
}

// waitFor waits until the tap has stored and analyzed the wanted counts.
func (cp *controlPlane) waitFor(ctx context.Context, stored, analyzed int64, start time.Time) (storedAt, analyzedAt time.Time, err error) {
	deadline := time.Now().Add(3 * time.Minute)
	for storedAt.IsZero() || analyzedAt.IsZero() {
		now := time.Now()
		if storedAt.IsZero() && cp.tap.stored.Load() >= stored {
			storedAt = now
		}
		if analyzedAt.IsZero() && cp.tap.analyzed.Load() >= analyzed {
			analyzedAt = now
		}
		if e := cp.err(); e != nil {
			return storedAt, analyzedAt, e
		}
		if ctx.Err() != nil || now.After(deadline) {
			return storedAt, analyzedAt, fmt.Errorf("control plane stored %d of %d, analyzed %d of %d after %s",
				cp.tap.stored.Load(), stored, cp.tap.analyzed.Load(), analyzed, now.Sub(start).Round(time.Millisecond))
		}
		time.Sleep(time.Millisecond)
	}
	return storedAt, analyzedAt, nil
}

// throughput produces n events as fast as the producers go and returns the
// events per second stored and analyzed, counted from the first produce.
func (cp *controlPlane) throughput(ctx context.Context, n int) (storedEPS, analyzedEPS float64, err error) {
	s0, a0 := cp.tap.stored.Load(), cp.tap.analyzed.Load()
	start := time.Now()
	if _, err := produceN(ctx, cp.brokers(), n); err != nil {
		return 0, 0, err
	}
	sAt, aAt, err := cp.waitFor(ctx, s0+int64(n), a0+int64(n), start)
	if err != nil {
		return 0, 0, err
	}
	return float64(n) / sAt.Sub(start).Seconds(), float64(n) / aAt.Sub(start).Seconds(), nil
}

// latency produces at a fixed rate for d, each event stamped when emitted,
// and returns emitted-to-stored and emitted-to-analyzed percentiles.
func (cp *controlPlane) latency(ctx context.Context, rate int, d time.Duration) (*PipeLatency, error) {
	n := int(float64(rate) * d.Seconds())
	prod, err := newProducer(cp.brokers())
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	cp.tap.mu.Lock()
	cp.tap.stLat, cp.tap.anLat = make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	cp.tap.mu.Unlock()
	s0, a0 := cp.tap.stored.Load(), cp.tap.analyzed.Load()
	cp.tap.record.Store(true)
	defer cp.tap.record.Store(false)

	// Several producer goroutines share the rate: one cannot encode and
	// produce 25,000 events/s on this machine. Each sends its share of the
	// events due so far every millisecond, stamped when sent.
	const producers = 4
	var perr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for p := range producers {
		wg.Go(func() {
			src := benchSource(100 + p)
			share := n / producers
			if p < n%producers {
				share++
			}
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for sent := 0; sent < share; {
				<-tick.C
				due := min(share, int(time.Since(start).Seconds()*float64(rate)/producers))
				for ; sent < due; sent++ {
					rec, err := bus.Encode(communicationEvent(src, time.Now(), sent))
					if err != nil {
						perr.CompareAndSwap(nil, err)
						return
					}
					prod.Produce(ctx, rec, func(_ *kgo.Record, err error) {
						if err != nil {
							perr.CompareAndSwap(nil, err)
						}
					})
				}
			}
		})
	}
	wg.Wait()
	achieved := float64(n) / time.Since(start).Seconds()
	if err := prod.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	if e, _ := perr.Load().(error); e != nil {
		return nil, fmt.Errorf("produce: %w", e)
	}
	if _, _, err := cp.waitFor(ctx, s0+int64(n), a0+int64(n), start); err != nil {
		return nil, err
	}
	cp.tap.record.Store(false)
	cp.tap.mu.Lock()
	defer cp.tap.mu.Unlock()
	if len(cp.tap.stLat) == 0 {
		return nil, errors.New("no latency samples")
	}
	slices.Sort(cp.tap.stLat)
	slices.Sort(cp.tap.anLat)
	return &PipeLatency{Rate: rate, Events: n, AchievedEPS: achieved,
		StoredP50ms: ms(percentile(cp.tap.stLat, 0.5)), StoredP99ms: ms(percentile(cp.tap.stLat, 0.99)),
		AnalyzedP50ms: ms(percentile(cp.tap.anLat, 0.5)), AnalyzedP99ms: ms(percentile(cp.tap.anLat, 0.99)),
	}, nil
}
