package emit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of the emitter's counters and state.
type Stats struct {
	// Emitted counts every Emit call (events offered by the request path).
	Emitted int64 `json:"emitted"`
	// Delivered counts events the broker acknowledged (live or replayed).
	Delivered int64 `json:"delivered"`
	// Spooled counts events written to the spool.
	Spooled int64 `json:"spooled"`
	// Replayed counts spooled events the broker acknowledged.
	Replayed int64 `json:"replayed"`
	// Recovered counts events found in the journal at start: handed to the
	// producer by a run that stopped before their outcome came back (a
	// kill), and moved to the spool (also counted in Spooled, or in Dropped
	// when the spool did not take them).
	Recovered int64 `json:"recovered"`
	// Unjournaled counts events produced without a journal copy because
	// the journal could not be written (disk error): a kill before the bus
	// acknowledges them loses them.
	Unjournaled int64 `json:"unjournaled"`
	// Dropped counts events given up, by reason.
	Dropped map[string]int64 `json:"dropped"`
	// QueueDepth and QueueCapacity describe the in-memory queue.
	QueueDepth    int `json:"queue_depth"`
	QueueCapacity int `json:"queue_capacity"`
	// Unwritten counts the events emitted that the writer has not yet
	// written (to the journal and the producer, or to the spool) nor
	// dropped: those in the queue, in the writer's hands, or being offered.
	// A process kill loses them; nothing else that was emitted (except
	// Unjournaled events the bus did not acknowledge yet). It is an upper
	// bound at the time of the snapshot: an event emitted during it may be
	// counted although already written.
	Unwritten int64 `json:"unwritten"`
	// SpoolBytes is the spool's size on disk; SpoolPending its unacknowledged events.
	SpoolBytes    int64 `json:"spool_bytes"`
	SpoolPending  int64 `json:"spool_pending"`
	SpoolSegments int   `json:"spool_segments"`
	// JournalBytes is the write-ahead journal's size on disk.
	JournalBytes int64 `json:"journal_bytes"`
	// BusConfigured is false in spool-only mode; BusLive is true while events
	// go straight to the bus.
	BusConfigured bool `json:"bus_configured"`
	BusLive       bool `json:"bus_live"`
}

// Stats returns a snapshot of the counters.
func (e *Emitter) Stats() Stats {
	// Unwritten: what the writer is done with first, then the drops before
	// the queue, then what was emitted (counted before it is offered), each
	// read at or before the next: an event in memory when the first was
	// read is counted, and no count can run ahead of emitted.
	handled := e.handled.Load()
	refused := e.dropped[ReasonQueueFull].Load() + e.dropped[ReasonClosed].Load()
	emitted := e.emitted.Load()
	s := Stats{
		Emitted:       emitted,
		Unwritten:     emitted - handled - refused,
		Delivered:     e.delivered.Load(),
		Spooled:       e.spooled.Load(),
		Replayed:      e.replayed.Load(),
		Recovered:     e.recovered.Load(),
		Unjournaled:   e.unjournaled.Load(),
		Dropped:       make(map[string]int64, len(reasons)),
		QueueDepth:    len(e.queue),
		QueueCapacity: cap(e.queue),
		SpoolBytes:    e.spool.Bytes(),
		SpoolPending:  e.spool.Pending(),
		SpoolSegments: e.spool.Segments(),
		JournalBytes:  e.journalBytes(),
		BusConfigured: e.client != nil,
		BusLive:       e.client != nil && e.live.Load(),
	}
	for _, r := range reasons {
		s.Dropped[r] = e.dropped[r].Load()
	}
	return s
}

func (e *Emitter) journalBytes() int64 {
	if e.journal == nil {
		return 0
	}
	return e.journal.Bytes()
}

// DroppedTotal sums the dropped counters.
func (s Stats) DroppedTotal() int64 {
	var n int64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

func (e *Emitter) register(reg *prometheus.Registry) error {
	const ns, sub = "omnibridge", "sidecar"
	counter := func(name, help string, v interface{ Load() int64 }, labels prometheus.Labels) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: name, Help: help, ConstLabels: labels,
		}, func() float64 { return float64(v.Load()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		counter("events_emitted_total", "Events offered to the emitter by the request path and the hook receiver.", &e.emitted, nil),
		counter("events_delivered_total", "Events acknowledged by the broker.", &e.delivered, nil),
		counter("events_spooled_total", "Events written to the on-disk spool.", &e.spooled, nil),
		counter("events_replayed_total", "Spooled events acknowledged by the broker.", &e.replayed, nil),
		counter("events_recovered_total", "Events found in the write-ahead journal at start (handed to the producer by a run killed before their outcome) and moved to the spool.", &e.recovered, nil),
		counter("events_unjournaled_total", "Events produced without a journal copy because the journal write failed; a kill before their acknowledgement loses them.", &e.unjournaled, nil),
		gauge("event_queue_depth", "Events waiting in the in-memory queue.", func() float64 { return float64(len(e.queue)) }),
		gauge("spool_bytes", "Size of the on-disk spool in bytes.", func() float64 { return float64(e.spool.Bytes()) }),
		gauge("spool_pending_events", "Spooled events not yet acknowledged by the broker.", func() float64 { return float64(e.spool.Pending()) }),
		gauge("journal_bytes", "Size of the write-ahead journal of events handed to the producer, in bytes.", func() float64 { return float64(e.journalBytes()) }),
		gauge("bus_connected", "1 while events go straight to the bus, 0 while they are spooled.", func() float64 {
			if e.client != nil && e.live.Load() {
				return 1
			}
			return 0
		}),
	}
	for _, r := range reasons {
		cs = append(cs, counter("events_dropped_total", "Events dropped, by reason.", e.dropped[r], prometheus.Labels{"reason": r}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register emitter metrics: %w", err)
		}
	}
	return nil
}
