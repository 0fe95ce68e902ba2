package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrNotFound: the trace, service or tool asked for is not known.
var ErrNotFound = errors.New("not found")

// ErrInvalid: a query argument is invalid.
var ErrInvalid = errors.New("invalid argument")

// Analyzer is the intelligence layer. Its Process methods are safe for
// concurrent use; queries read consistent per-part snapshots.
type Analyzer struct {
	cfg Config
	log *slog.Logger

	routes *routeTable
	pats   *patternBook
	traces *traceStore
	sess   *sessionStore
	eco    *ecosystem
	tools  *toolRegistry

	ready     chan struct{}
	replaying atomic.Bool
	dedupMu   sync.Mutex
	dedup     map[string]struct{} // event ids seen during replay (live or replayed)
	dedupFrom time.Time

	mEvents  *prometheus.CounterVec
	mDropped *prometheus.CounterVec
	mPersist *prometheus.CounterVec
}

// New builds an Analyzer; call Run to load persisted state and replay.
func New(cfg Config) (*Analyzer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	a := &Analyzer{cfg: cfg, log: cfg.Log, ready: make(chan struct{})}
	a.mEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_analyze_events_total", Help: "Events analyzed, by topic."}, []string{"topic"})
	a.mDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_analyze_dropped_total", Help: "Observations not tracked, by reason (route_limit, invalid, trace_full)."}, []string{"reason"})
	a.mPersist = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omnibridge_analyze_persist_errors_total", Help: "Failed writes or reads of the analyzer's tables, by table."}, []string{"table"})
	for _, c := range []prometheus.Collector{a.mEvents, a.mDropped, a.mPersist} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	a.routes = newRouteTable(cfg, a.mDropped.WithLabelValues("route_limit"))
	a.pats = newPatternBook()
	var err error
	if a.traces, err = newTraceStore(cfg, a.mDropped.WithLabelValues("trace_full")); err != nil {
		return nil, err
	}
	if a.sess, err = newSessionStore(cfg.MaxSessions); err != nil {
		return nil, err
	}
	a.eco = newEcosystem(cfg)
	a.tools = newToolRegistry(cfg)
	a.traces.routes, a.traces.pats, a.traces.eco = a.routes, a.pats, a.eco
	return a, nil
}

// Ready is closed once persisted state is loaded and the replay is done.
func (a *Analyzer) Ready() <-chan struct{} { return a.ready }

// Run loads the analyzer's tables, replays the baseline window of stored
// events, then flushes patterns and tools, sweeps traces and snapshots the
// ecosystem periodically until ctx ends; a last flush follows.
func (a *Analyzer) Run(ctx context.Context) error {
	loadedPatterns := false
	if a.cfg.Pool != nil {
		n, err := a.load(ctx)
		if err != nil {
			return fmt.Errorf("load analyzer state: %w", err)
		}
		loadedPatterns = n > 0
	}
	if a.cfg.Source != nil {
		if err := a.replay(ctx, loadedPatterns); err != nil && ctx.Err() == nil {
			return fmt.Errorf("replay events: %w", err)
		}
	}
	close(a.ready)
	flush := time.NewTicker(a.cfg.FlushInterval)
	defer flush.Stop()
	snap := time.NewTicker(a.cfg.SnapshotInterval)
	defer snap.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := a.Flush(fctx)
			cancel()
			if err != nil {
				a.log.Warn("final flush failed", "err", err)
			}
			return nil
		case <-flush.C:
			if err := a.Flush(ctx); err != nil {
				a.log.Warn("flush failed", "err", err)
			}
		case <-snap.C:
			if err := a.Snapshot(ctx); err != nil {
				a.log.Warn("ecosystem snapshot failed", "err", err)
			}
		}
	}
}

// replay feeds the baseline window of stored events through the processors.
// Events also delivered live while the replay runs are analyzed once.
func (a *Analyzer) replay(ctx context.Context, loadedPatterns bool) error {
	now := a.cfg.Now()
	a.dedupMu.Lock()
	a.dedup = map[string]struct{}{}
	a.dedupFrom = now.Add(-5 * time.Minute)
	a.dedupMu.Unlock()
	a.replaying.Store(true)
	defer func() {
		a.replaying.Store(false)
		a.dedupMu.Lock()
		a.dedup = nil
		a.dedupMu.Unlock()
	}()
	since := now.Add(-a.baseline())
	n := 0
	err := a.cfg.Source.Replay(ctx, since, func(ev bus.Event) error {
		if !a.firstSighting(ev, true) {
			return nil
		}
		n++
		a.process(ev, replayOpts{countPatterns: !loadedPatterns})
		return ctx.Err()
	})
	a.log.Info("replayed events", "count", n, "since", since)
	return err
}

func (a *Analyzer) baseline() time.Duration {
	return a.cfg.Layout.Coarse * time.Duration(a.cfg.Layout.CoarseCount)
}

// firstSighting reports whether an event is seen for the first time while
// a replay runs (always true otherwise).
func (a *Analyzer) firstSighting(ev bus.Event, fromReplay bool) bool {
	if !a.replaying.Load() {
		return true
	}
	env := ev.GetEnvelope()
	if fromReplay && env.GetOccurredAt().AsTime().Before(a.dedupFrom) {
		return true
	}
	a.dedupMu.Lock()
	defer a.dedupMu.Unlock()
	if a.dedup == nil {
		return true
	}
	if _, ok := a.dedup[env.GetEventId()]; ok {
		return false
	}
	a.dedup[env.GetEventId()] = struct{}{}
	return true
}

type replayOpts struct{ countPatterns bool }

var live = replayOpts{countPatterns: true}

func (a *Analyzer) process(ev bus.Event, o replayOpts) {
	switch e := ev.(type) {
	case *bridgev1.ServiceLifecycleEvent:
		a.lifecycle(e)
	case *bridgev1.ExecutionIntelligenceEvent:
		a.execution(e, o)
	case *bridgev1.CommunicationIntelligenceEvent:
		a.communication(e, o)
	case *bridgev1.ToolRegistrationEvent:
		a.tools.register(e)
	}
}

// ProcessLifecycle analyzes newly stored lifecycle events.
func (a *Analyzer) ProcessLifecycle(_ context.Context, evs []*bridgev1.ServiceLifecycleEvent) error {
	for _, e := range evs {
		if a.firstSighting(e, false) {
			a.lifecycle(e)
		}
	}
	a.mEvents.WithLabelValues(bus.TopicLifecycle).Add(float64(len(evs)))
	return nil
}

// ProcessExecutions analyzes newly stored execution events.
func (a *Analyzer) ProcessExecutions(_ context.Context, evs []*bridgev1.ExecutionIntelligenceEvent) error {
	for _, e := range evs {
		if a.firstSighting(e, false) {
			a.execution(e, live)
		}
	}
	a.mEvents.WithLabelValues(bus.TopicExecution).Add(float64(len(evs)))
	return nil
}

// ProcessCommunications analyzes newly stored communication events.
func (a *Analyzer) ProcessCommunications(_ context.Context, evs []*bridgev1.CommunicationIntelligenceEvent) error {
	for _, e := range evs {
		if a.firstSighting(e, false) {
			a.communication(e, live)
		}
	}
	a.mEvents.WithLabelValues(bus.TopicCommunication).Add(float64(len(evs)))
	return nil
}

// ProcessTools analyzes newly stored tool registration events.
func (a *Analyzer) ProcessTools(_ context.Context, evs []*bridgev1.ToolRegistrationEvent) error {
	for _, e := range evs {
		if a.firstSighting(e, false) {
			a.tools.register(e)
		}
	}
	a.mEvents.WithLabelValues(bus.TopicTools).Add(float64(len(evs)))
	return nil
}

// OnCatalog takes the current Consul catalog (every service it lists now).
func (a *Analyzer) OnCatalog(services []CatalogService) { a.eco.onCatalog(services, a.cfg.Now()) }

// Flush sweeps traces (attributing root causes to patterns), expires old
// traces and, with a pool, writes changed patterns and tools.
func (a *Analyzer) Flush(ctx context.Context) error {
	a.sweep()
	if a.cfg.Pool == nil {
		return nil
	}
	return errors.Join(a.savePatterns(ctx), a.saveTools(ctx))
}

// sweep rebuilds changed traces, so call attribution, root causes and
// pattern attribution are current.
func (a *Analyzer) sweep() {
	a.traces.sweep(a.cfg.Now())
}
