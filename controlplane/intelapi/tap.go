package intelapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// tapItem is one event queued for a subscriber, with the events dropped
// for it just before.
type tapItem struct {
	resp *bridgev1.TapResponse
}

type subscriber struct {
	filter  *bridgev1.TapRequest
	topics  map[string]bool
	mu      sync.Mutex // serializes enqueue and the pending-drop count
	ch      chan tapItem
	pending uint64
}

// hub fans events out to tap subscribers.
type hub struct {
	cfg     Config
	mu      sync.RWMutex
	subs    map[*subscriber]struct{}
	dropped prometheus.Counter
	streams prometheus.Gauge
}

func newHub(cfg Config) (*hub, error) {
	h := &hub{cfg: cfg, subs: map[*subscriber]struct{}{},
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "omnibridge_tap_dropped_total", Help: "Events a tap subscriber was too slow to take."}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "omnibridge_tap_streams", Help: "Open tap streams."}),
	}
	for _, c := range []prometheus.Collector{h.dropped, h.streams} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("register tap metrics: %w", err)
		}
	}
	return h, nil
}

// Observe offers a newly stored event to every tap whose filter matches. It
// never blocks: a subscriber whose buffer is full loses the event, and the
// next event it gets carries the count.
func (s *Server) Observe(ev bus.Event, _ bool) {
	h := s.tap
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.subs) == 0 {
		return
	}
	facts := factsOf(ev)
	var resp *bridgev1.TapResponse
	for sub := range h.subs {
		if !sub.matches(facts) {
			continue
		}
		if resp == nil {
			resp = wrap(ev)
		}
		sub.mu.Lock()
		r := resp
		if sub.pending > 0 {
			r = &bridgev1.TapResponse{Event: resp.Event, DroppedBefore: sub.pending}
		}
		select {
		case sub.ch <- tapItem{resp: r}:
			sub.pending = 0
		default:
			sub.pending++
			h.dropped.Inc()
		}
		sub.mu.Unlock()
	}
}

// Subscribers is the number of open tap streams.
func (s *Server) Subscribers() int {
	s.tap.mu.RLock()
	defer s.tap.mu.RUnlock()
	return len(s.tap.subs)
}

type facts struct {
	topic    string
	services []string
	failed   bool
	route    string
	hasRoute bool
}

func factsOf(ev bus.Event) facts {
	switch e := ev.(type) {
	case *bridgev1.ServiceLifecycleEvent:
		h := e.GetHealth()
		return facts{topic: bus.TopicLifecycle, services: []string{e.GetServiceInfo().GetName()},
			failed: h == bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY || h == bridgev1.HealthStatus_HEALTH_STATUS_DEGRADED}
	case *bridgev1.ExecutionIntelligenceEvent:
		op := e.GetPreContext().GetOperation()
		if t := e.GetMcp().GetToolName(); t != "" {
			op = t
		}
		return facts{topic: bus.TopicExecution, services: []string{e.GetPreContext().GetServiceName(), e.GetEnvelope().GetSource().GetService()},
			failed: !e.GetResults().GetSuccess() || e.GetMcp().GetToolError(), route: op, hasRoute: true}
	case *bridgev1.CommunicationIntelligenceEvent:
		return facts{topic: bus.TopicCommunication, services: []string{e.GetPerformanceMetrics().GetTargetService(), e.GetRequestContext().GetSourceService(), e.GetEnvelope().GetSource().GetService()},
			failed: !e.GetPerformanceMetrics().GetSuccess(), route: e.GetRequestContext().GetRoute(), hasRoute: true}
	case *bridgev1.ToolRegistrationEvent:
		return facts{topic: bus.TopicTools, services: []string{e.GetToolInfo().GetServiceSource()}, route: e.GetToolInfo().GetName(), hasRoute: true}
	}
	return facts{}
}

func (sub *subscriber) matches(f facts) bool {
	if len(sub.topics) > 0 && !sub.topics[f.topic] {
		return false
	}
	if sub.filter.GetErrorsOnly() && !f.failed {
		return false
	}
	if p := sub.filter.GetRoutePrefix(); p != "" && (!f.hasRoute || !strings.HasPrefix(f.route, p)) {
		return false
	}
	if svc := sub.filter.GetService(); svc != "" {
		for _, s := range f.services {
			if s == svc {
				return true
			}
		}
		return false
	}
	return true
}

func wrap(ev bus.Event) *bridgev1.TapResponse {
	switch e := ev.(type) {
	case *bridgev1.ServiceLifecycleEvent:
		return &bridgev1.TapResponse{Event: &bridgev1.TapResponse_Lifecycle{Lifecycle: e}}
	case *bridgev1.ExecutionIntelligenceEvent:
		return &bridgev1.TapResponse{Event: &bridgev1.TapResponse_Execution{Execution: e}}
	case *bridgev1.CommunicationIntelligenceEvent:
		return &bridgev1.TapResponse{Event: &bridgev1.TapResponse_Communication{Communication: e}}
	case *bridgev1.ToolRegistrationEvent:
		return &bridgev1.TapResponse{Event: &bridgev1.TapResponse_Tool{Tool: e}}
	}
	return &bridgev1.TapResponse{}
}

// Tap implements the IntelligenceService: it streams matching events until
// the client goes away.
func (s *Server) Tap(ctx context.Context, req *connect.Request[bridgev1.TapRequest], stream *connect.ServerStream[bridgev1.TapResponse]) error {
	sub := &subscriber{filter: req.Msg, ch: make(chan tapItem, s.cfg.TapBuffer)}
	for _, t := range req.Msg.GetTopics() {
		known := false
		for _, k := range bus.Topics {
			known = known || k == t
		}
		if !known {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unknown topic %q (want one of %s)", t, strings.Join(bus.Topics, ", ")))
		}
		if sub.topics == nil {
			sub.topics = map[string]bool{}
		}
		sub.topics[t] = true
	}
	h := s.tap
	h.mu.Lock()
	if len(h.subs) >= s.cfg.MaxTapStreams {
		h.mu.Unlock()
		return connect.NewError(connect.CodeResourceExhausted, errors.New("too many tap streams"))
	}
	h.subs[sub] = struct{}{}
	h.streams.Inc()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, sub)
		h.streams.Dec()
		h.mu.Unlock()
	}()
	// Send the headers now, so the client knows the tap is open.
	if err := stream.Conn().Send(nil); err != nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case it := <-sub.ch:
			if err := stream.Send(it.resp); err != nil {
				return nil // the client went away
			}
		}
	}
}
