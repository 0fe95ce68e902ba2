package bus

import (
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// NewEventID returns a new UUIDv7 event id in canonical form. UUIDv7 ids sort
// by creation time, which keeps index inserts local in PostgreSQL.
func NewEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does; fall back to v4,
		// which is as unique, only not time-ordered.
		return uuid.NewString()
	}
	return id.String()
}

// Source stamps envelopes for one emitting process: the same source on every
// event and a sequence that increases by one per event, across all topics.
// It is safe for concurrent use.
type Source struct {
	src *bridgev1.Source
	seq atomic.Uint64
}

// NewSource returns a Source for the given identity. start is the last
// sequence number already used (0 for a fresh process), so that a process
// that persists its sequence can continue it.
func NewSource(src *bridgev1.Source, start uint64) *Source {
	s := &Source{src: src}
	s.seq.Store(start)
	return s
}

// Identity returns the source identity (shared; do not modify).
func (s *Source) Identity() *bridgev1.Source { return s.src }

// Sequence returns the last sequence number handed out.
func (s *Source) Sequence() uint64 { return s.seq.Load() }

// Envelope returns a new envelope with a fresh id, the next sequence number,
// the given time and trace context (which may be nil).
func (s *Source) Envelope(at time.Time, trace *bridgev1.TraceContext) *bridgev1.Envelope {
	return &bridgev1.Envelope{
		EventId:       NewEventID(),
		OccurredAt:    timestamppb.New(at),
		Source:        s.src,
		Sequence:      s.seq.Add(1),
		Trace:         trace,
		SchemaVersion: SchemaVersion,
	}
}
