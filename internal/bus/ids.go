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
	seq *atomic.Uint64
}

// NewSource returns a Source for the given identity. start is the last
// sequence number already used (0 for a fresh process), so that a process
// that persists its sequence can continue it.
func NewSource(src *bridgev1.Source, start uint64) *Source {
	s := &Source{src: src, seq: new(atomic.Uint64)}
	s.seq.Store(start)
	return s
}

// NewSourceWithCounter returns a Source whose sequence lives in counter,
// which holds the last number already used. The sidecar keeps the counter
// in a file mapped into memory, so that the number survives a SIGKILL.
func NewSourceWithCounter(src *bridgev1.Source, counter *atomic.Uint64) *Source {
	return &Source{src: src, seq: counter}
}

// Identity returns the source identity (shared; do not modify).
func (s *Source) Identity() *bridgev1.Source { return s.src }

// Sequence returns the last sequence number handed out.
func (s *Source) Sequence() uint64 { return s.seq.Load() }

// Reserve hands out the next sequence number for an event that will be
// built later (EnvelopeAt). A number reserved and never used is a gap the
// control plane counts as a lost event, so reserve only for an event that
// will be emitted unless the process dies first.
func (s *Source) Reserve() uint64 { return s.seq.Add(1) }

// Envelope returns a new envelope with a fresh id, the next sequence number,
// the given time and trace context (which may be nil).
func (s *Source) Envelope(at time.Time, trace *bridgev1.TraceContext) *bridgev1.Envelope {
	return s.EnvelopeAt(s.Reserve(), at, trace)
}

// EnvelopeAt is Envelope with a sequence number taken earlier by Reserve.
func (s *Source) EnvelopeAt(seq uint64, at time.Time, trace *bridgev1.TraceContext) *bridgev1.Envelope {
	return &bridgev1.Envelope{
		EventId:       NewEventID(),
		OccurredAt:    timestamppb.New(at),
		Source:        s.src,
		Sequence:      seq,
		Trace:         trace,
		SchemaVersion: SchemaVersion,
	}
}

// Draft returns an envelope without its sequence number, for an event that
// must be validated before it is numbered; Seal numbers it.
func (s *Source) Draft(at time.Time, trace *bridgev1.TraceContext) *bridgev1.Envelope {
	return s.EnvelopeAt(0, at, trace)
}

// Seal validates ev, whose envelope came from Draft, and gives it the next
// sequence number only when it is valid: an event refused here never takes
// a number, so it cannot leave a gap that would count as a lost event.
func (s *Source) Seal(ev Event) error {
	env := ev.GetEnvelope()
	if env == nil {
		return Validate(ev)
	}
	env.Sequence = 1 // any valid number; the real one is taken below
	if err := Validate(ev); err != nil {
		env.Sequence = 0
		return err
	}
	env.Sequence = s.Reserve()
	return nil
}
