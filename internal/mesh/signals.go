package mesh

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omninode/bridge/controlplane/directives"
	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// signalPath is the critical signal's way into the optimization engine.
// Signals on the directive stream reach the engine at once (the directive
// server's OnSignal); critical events arriving through the bus (the fast
// lane) are de-duplicated by event id against the stream's copies
// (directives.Server.SeenEvent) and passed on too, at most once per service
// and second, so a burst of failures costs one evaluation. The observer never
// blocks the pipeline: a full queue drops (counted).
type signalPath struct {
	dsrv    *directives.Server
	eng     atomic.Pointer[optimize.Engine]
	queue   chan queuedSignal
	dropped atomic.Uint64

	mu   sync.Mutex
	last map[string]time.Time
}

type queuedSignal struct {
	service string
	sig     *bridgev1.CriticalSignal
}

func newSignalPath(dsrv *directives.Server) *signalPath {
	return &signalPath{dsrv: dsrv, queue: make(chan queuedSignal, 256), last: map[string]time.Time{}}
}

// fromStream is the directive server's OnSignal: the stream's copy.
func (p *signalPath) fromStream(ctx context.Context, service string, sig *bridgev1.CriticalSignal) {
	if e := p.eng.Load(); e != nil {
		e.OnSignal(ctx, service, sig)
	}
}

// Observe implements ingest.Observer for the bus copy of critical events.
func (p *signalPath) Observe(ev bus.Event, critical bool) {
	if !critical {
		return
	}
	c, ok := ev.(*bridgev1.CommunicationIntelligenceEvent)
	if !ok {
		return
	}
	id := c.GetEnvelope().GetEventId()
	if id == "" || p.dsrv.SeenEvent(id) {
		return
	}
	service := c.GetPerformanceMetrics().GetTargetService()
	if service == "" {
		service = c.GetEnvelope().GetSource().GetService()
	}
	now := time.Now()
	p.mu.Lock()
	if now.Sub(p.last[service]) < time.Second {
		p.mu.Unlock()
		return
	}
	p.last[service] = now
	p.mu.Unlock()
	kind := bridgev1.SignalKind_SIGNAL_KIND_ERROR_BURST
	value := 1.0
	if c.GetPerformanceMetrics().GetSuccess() {
		kind, value = bridgev1.SignalKind_SIGNAL_KIND_LATENCY_BREACH, c.GetPerformanceMetrics().GetResponseTime().AsDuration().Seconds()
	}
	sig := &bridgev1.CriticalSignal{EventId: id, Kind: kind, Route: c.GetRequestContext().GetRoute(), Value: value,
		WindowRequests: 1, ObservedAt: timestamppb.New(now)}
	select {
	case p.queue <- queuedSignal{service: service, sig: sig}:
	default:
		p.dropped.Add(1)
	}
}

// Run hands queued bus signals to the engine until ctx ends.
func (p *signalPath) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-p.queue:
			if e := p.eng.Load(); e != nil {
				e.OnSignal(ctx, s.service, s.sig)
			}
		}
	}
}
