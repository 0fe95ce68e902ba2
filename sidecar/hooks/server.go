package hooks

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/redact"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	kindLifecycle = "lifecycle"
	kindExecution = "execution"
	// unknownOperation names the operation of results that arrived with no
	// pre-context (never sent, or expired).
	unknownOperation = "unknown"
)

// Server receives hooks. Build it with New and serve Handler.
type Server struct {
	cfg     Config
	src     *bus.Source
	sink    Sink
	red     *redact.Redactor
	m       *metrics
	handler http.Handler

	// mu guards the state below. Work under it is CPU only (no I/O; Emit
	// does not block), so holding it across build-and-emit is cheap and makes
	// "check idempotency, emit, remember" atomic.
	mu         sync.Mutex
	pending    *ttlMap[*pendingExec] // by correlation_id
	idem       *ttlMap[string]       // kind+"\x00"+idempotency_key -> event_id
	lastHealth bridgev1.HealthStatus
}

// pendingExec is a redacted pre-context waiting for its results.
type pendingExec struct {
	pre   *bridgev1.PreContext
	trace *bridgev1.TraceContext
}

// New validates cfg and builds a Server that emits to sink, stamping
// envelopes with src and redacting with red.
func New(cfg Config, src *bus.Source, sink Sink, red *redact.Redactor) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("create hook receiver: %w", err)
	}
	if src == nil || sink == nil || red == nil {
		return nil, errors.New("create hook receiver: source, sink and redactor are required")
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("register hook metrics: %w", err)
	}
	s := &Server{
		cfg: cfg, src: src, sink: sink, red: red, m: m,
		pending: newTTLMap[*pendingExec](cfg.PendingTTL, cfg.MaxPending),
		idem:    newTTLMap[string](cfg.IdempotencyTTL, cfg.MaxPending),
	}
	s.handler = s.routes()
	return s, nil
}

// Handler serves the JSON endpoints, the schema and the Connect HookService.
func (s *Server) Handler() http.Handler { return s.handler }

// rejected counts and logs a rejection.
func (s *Server) rejected(kind string, err *rejectError) {
	s.m.rejected.WithLabelValues(err.reason).Inc()
	if err.reason == ReasonMalformed {
		// Decoder messages can quote the payload; log the reason only.
		s.cfg.Logger.Debug("hook rejected", "kind", kind, "reason", err.reason)
		return
	}
	s.cfg.Logger.Debug("hook rejected", "kind", kind, "reason", err.reason, "error", err.msg)
}

// sweepLocked drops expired state. s.mu must be held.
func (s *Server) sweepLocked(now time.Time) {
	if n := s.pending.sweep(now); n > 0 {
		s.m.expired.Add(float64(n))
	}
	s.idem.sweep(now)
	s.m.pending.Set(float64(s.pending.len()))
}

// reportLifecycle handles one lifecycle hook; the error is a *rejectError.
func (s *Server) reportLifecycle(req *bridgev1.ReportLifecycleRequest, h http.Header) (*bridgev1.ReportLifecycleResponse, error) {
	s.m.received.WithLabelValues(kindLifecycle).Inc()
	if err := validateLifecycle(req, s.cfg.Service); err != nil {
		s.rejected(kindLifecycle, err)
		return nil, err
	}
	info := s.serviceInfo(req.GetServiceInfo())
	reason := s.red.Error(req.GetHealthReason())
	trace := traceFrom(h)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.sweepLocked(now)
	key := kindLifecycle + "\x00" + req.GetIdempotencyKey()
	if req.GetIdempotencyKey() != "" {
		if id, ok := s.idem.get(key, now); ok {
			s.m.duplicates.WithLabelValues(kindLifecycle).Inc()
			return &bridgev1.ReportLifecycleResponse{EventId: id}, nil
		}
	}
	ev := &bridgev1.ServiceLifecycleEvent{
		Envelope:    s.src.Draft(now, trace),
		EventType:   req.GetEventType(),
		ServiceInfo: info,
		IntelligenceMetadata: &bridgev1.LifecycleIntelligenceMetadata{
			DiscoveryMethod:       bridgev1.DiscoveryMethod_DISCOVERY_METHOD_HOOK,
			RegistrationAutomatic: true,
			CapabilityExtraction:  "declared",
		},
		Health:       req.GetHealth(),
		HealthReason: reason,
	}
	if req.GetEventType() == bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE {
		ev.PreviousHealth = s.lastHealth
	}
	if err := s.src.Seal(ev); err != nil {
		e := reject(ReasonMissingField, "build event: %v", err)
		s.rejected(kindLifecycle, e)
		return nil, e
	}
	s.sink.Emit(ev)
	s.m.emitted.WithLabelValues(kindLifecycle).Inc()
	if req.GetHealth() != bridgev1.HealthStatus_HEALTH_STATUS_UNSPECIFIED {
		s.lastHealth = req.GetHealth()
	}
	id := ev.GetEnvelope().GetEventId()
	if req.GetIdempotencyKey() != "" {
		s.idem.put(key, id, now)
	}
	return &bridgev1.ReportLifecycleResponse{EventId: id}, nil
}

// serviceInfo builds the event's ServiceInfo: the configured name, values
// escaped, endpoint URLs without credentials.
func (s *Server) serviceInfo(si *bridgev1.ServiceInfo) *bridgev1.ServiceInfo {
	out := &bridgev1.ServiceInfo{Name: s.cfg.Service, Version: s.red.String(si.GetVersion())}
	for _, c := range si.GetCapabilities() {
		out.Capabilities = append(out.Capabilities, s.red.String(c))
	}
	for _, d := range si.GetDependencies() {
		out.Dependencies = append(out.Dependencies, s.red.String(d))
	}
	for _, ep := range si.GetEndpoints() {
		out.Endpoints = append(out.Endpoints, &bridgev1.Endpoint{
			Url:      s.endpointURL(ep.GetUrl()),
			Protocol: s.red.String(ep.GetProtocol()),
		})
	}
	return out
}

// endpointURL keeps scheme and host and redacts the rest like a request URL.
func (s *Server) endpointURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return s.red.Error(raw)
	}
	prefix := ""
	if u.Scheme != "" {
		prefix = u.Scheme + ":"
	}
	if u.Host != "" {
		prefix += "//" + u.Host
	}
	return s.red.String(prefix + s.red.URL(u))
}

// reportExecution handles one execution hook; the error is a *rejectError.
func (s *Server) reportExecution(req *bridgev1.ReportExecutionRequest, h http.Header) (*bridgev1.ReportExecutionResponse, error) {
	s.m.received.WithLabelValues(kindExecution).Inc()
	if err := validateExecution(req); err != nil {
		s.rejected(kindExecution, err)
		return nil, err
	}
	trace := traceFrom(h)
	// Redact before taking the lock: it is the costly part.
	var pre *bridgev1.PreContext
	if pc := req.GetPreContext(); pc != nil {
		pre = &bridgev1.PreContext{
			SessionId:   s.red.String(pc.GetSessionId()),
			ServiceName: s.cfg.Service,
			Operation:   s.red.String(pc.GetOperation()),
			Parameters:  s.red.Struct(pc.GetParameters()),
			Timestamp:   pc.GetTimestamp(),
		}
	}
	var results *bridgev1.ExecutionResults
	if r := req.GetResults(); r != nil {
		results = &bridgev1.ExecutionResults{
			Success:       r.GetSuccess(),
			Output:        s.red.Struct(r.GetOutput()),
			Error:         s.red.Error(r.GetError()),
			ExecutionTime: durationpb.New(r.GetExecutionTime().AsDuration()),
			ErrorCode:     s.red.String(r.GetErrorCode()),
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.sweepLocked(now)
	key := kindExecution + "\x00" + req.GetIdempotencyKey()
	if req.GetIdempotencyKey() != "" {
		if id, ok := s.idem.get(key, now); ok {
			s.m.duplicates.WithLabelValues(kindExecution).Inc()
			return &bridgev1.ReportExecutionResponse{EventId: id}, nil
		}
	}
	corr := req.GetCorrelationId()
	if results == nil {
		// Pre-context only: remember it until its results come.
		if s.pending.full(corr) {
			e := reject(ReasonPendingFull, "too many pre-contexts waiting for results (%d)", s.cfg.MaxPending)
			s.rejected(kindExecution, e)
			return nil, e
		}
		if pre.Timestamp == nil {
			pre.Timestamp = timestamppb.New(now)
		}
		s.pending.put(corr, &pendingExec{pre: pre, trace: trace}, now)
		s.m.pending.Set(float64(s.pending.len()))
		if req.GetIdempotencyKey() != "" {
			s.idem.put(key, "", now)
		}
		return &bridgev1.ReportExecutionResponse{}, nil
	}

	waiting, matched := s.pending.get(corr, now)
	if pre == nil {
		if matched {
			pre = waiting.pre
		} else {
			s.m.unmatched.Inc()
			pre = &bridgev1.PreContext{ServiceName: s.cfg.Service, Operation: unknownOperation}
		}
	}
	if pre.Timestamp == nil {
		pre.Timestamp = timestamppb.New(now.Add(-results.GetExecutionTime().AsDuration()))
	}
	if trace == nil && matched {
		trace = waiting.trace
	}
	ev := &bridgev1.ExecutionIntelligenceEvent{
		Envelope:      s.src.Draft(now, trace),
		EventType:     bridgev1.ExecutionEventType_EXECUTION_EVENT_TYPE_EXECUTION_COMPLETED,
		CorrelationId: corr,
		PreContext:    pre,
		Results:       results,
		Kind:          bridgev1.ExecutionKind_EXECUTION_KIND_HOOK,
	}
	if err := s.src.Seal(ev); err != nil {
		e := reject(ReasonOutOfRange, "build event: %v", err)
		s.rejected(kindExecution, e)
		return nil, e
	}
	s.sink.Emit(ev)
	s.m.emitted.WithLabelValues(kindExecution).Inc()
	if matched {
		s.pending.remove(corr)
		s.m.pending.Set(float64(s.pending.len()))
	}
	id := ev.GetEnvelope().GetEventId()
	if req.GetIdempotencyKey() != "" {
		s.idem.put(key, id, now)
	}
	return &bridgev1.ReportExecutionResponse{EventId: id}, nil
}
