package store

import (
	"context"
	"sort"
	"sync"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
)

// Mem is the embedded store for `omnibridge dev`: the same idempotent
// semantics as [PG], kept in process memory. It is NOT durable: everything
// is lost when the process exits. It keeps events for Retention like PG.
type Mem struct {
	cfg Config
	m   *metrics

	mu     sync.Mutex
	ids    map[string]bool
	events []memEvent // in insertion order; Replay sorts
	ops    map[[2]string]*OpStats
	sums   map[[2]string]int64 // total execution ms per operation
}

type memEvent struct {
	at time.Time
	ev bus.Event
}

var _ Store = (*Mem)(nil)

// NewMem returns an empty in-process store.
func NewMem(cfg Config) (*Mem, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Mem{cfg: cfg, m: newMetrics(cfg.Registry), ids: map[string]bool{},
		ops: map[[2]string]*OpStats{}, sums: map[[2]string]int64{}}, nil
}

// WriteEvents implements [Store].
func (s *Mem) WriteEvents(ctx context.Context, evs []bus.Event) (map[string]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	cutoff := dayStart(s.cfg.Now().Add(-s.cfg.Retention))
	inserted := make(map[string]bool, len(evs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		id, at := ev.GetEnvelope().GetEventId(), occurredAt(ev)
		if at.Before(cutoff) {
			s.m.expired.Inc()
			continue
		}
		t, err := tableFor(ev)
		if err != nil {
			return nil, err
		}
		if s.ids[id] {
			s.m.rows.WithLabelValues(eventTables[t].name, "duplicate").Inc()
			continue
		}
		s.ids[id] = true
		inserted[id] = true
		s.events = append(s.events, memEvent{at: at, ev: ev})
		s.m.rows.WithLabelValues(eventTables[t].name, "inserted").Inc()
		if e, ok := ev.(*bridgev1.ExecutionIntelligenceEvent); ok {
			s.addOp(e)
		}
	}
	s.m.writeSeconds.WithLabelValues("ok").Observe(time.Since(start).Seconds())
	return inserted, nil
}

func (s *Mem) addOp(e *bridgev1.ExecutionIntelligenceEvent) {
	k := [2]string{text(e.GetPreContext().GetServiceName()), text(e.GetPreContext().GetOperation())}
	st := s.ops[k]
	if st == nil {
		st = &OpStats{Service: k[0], Operation: k[1]}
		s.ops[k] = st
	}
	ms := e.GetResults().GetExecutionTime().AsDuration().Milliseconds()
	st.Count++
	if !e.GetResults().GetSuccess() {
		st.Failures++
	}
	st.MaxMs = max(st.MaxMs, ms)
	s.sums[k] += ms
	st.AvgMs = float64(s.sums[k]) / float64(st.Count)
}

// Replay implements [Store].
func (s *Mem) Replay(ctx context.Context, since time.Time, fn func(bus.Event) error) error {
	s.mu.Lock()
	var sel []memEvent
	for _, e := range s.events {
		if !e.at.Before(since) {
			sel = append(sel, e)
		}
	}
	s.mu.Unlock()
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].at.Before(sel[j].at) })
	for _, e := range sel {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e.ev); err != nil {
			return err
		}
	}
	return nil
}

// OperationStats implements [Store].
func (s *Mem) OperationStats(_ context.Context, service, operation string) (OpStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.ops[[2]string{service, operation}]; st != nil {
		return *st, nil
	}
	return OpStats{Service: service, Operation: operation}, nil
}

// Maintain implements [Store]: it forgets events of days past the retention.
// Their ids are forgotten too, as PG forgets them with the partition.
func (s *Mem) Maintain(context.Context) error {
	cutoff := dayStart(s.cfg.Now().Add(-s.cfg.Retention))
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.events[:0]
	for _, e := range s.events {
		if e.at.Before(cutoff) {
			delete(s.ids, e.ev.GetEnvelope().GetEventId())
			continue
		}
		kept = append(kept, e)
	}
	clear(s.events[len(kept):])
	s.events = kept
	return nil
}

// Run calls Maintain every MaintainInterval until ctx ends.
func (s *Mem) Run(ctx context.Context) error { return runMaintenance(ctx, s.cfg, s.Maintain) }

// Close does nothing; it exists to satisfy [Store].
func (s *Mem) Close() {}
