package proxy

import (
	"context"
	"net/http"
	"strings"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/policy"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Span options, built once (each call boxes an option).
var (
	serverKind = trace.WithSpanKind(trace.SpanKindServer)
	clientKind = trace.WithSpanKind(trace.SpanKindClient)
)

// ServeHTTP proxies one request and emits its communication event.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer resetFraming(r)
	if label, msg := framingError(r); label != "" {
		p.reject(w, label, msg)
		return
	}
	rt := p.metrics.routeLabel(p.routes.Template(r.URL.Path))
	proto, mode := classify(r, p.cfg.MCP)

	ctx := p.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	parent := trace.SpanContextFromContext(ctx)
	ctx, span := p.tracer.Start(ctx, r.Method+" "+rt, serverKind)
	sc := span.SpanContext()

	x := p.pool.Get().(*exchange)
	x.rec.reset(w, start, mode)
	x.proxyErr, x.clientSpan, x.traceID = "", nil, sc.TraceID().String()
	// The body counter is not pooled: the transport may still read or close
	// the request body after the round trip returned.
	x.body = &countingBody{}
	if r.Body != nil && r.Body != http.NoBody {
		x.body.rc = r.Body
		r.Body = x.body
	}
	ctx = policy.WithRecorder(context.WithValue(ctx, exchangeKey{}, x))
	p.handler.ServeHTTP(&x.rec, r.WithContext(ctx))
	elapsed := time.Since(start)

	status := x.rec.status
	if status == 0 && x.proxyErr == "" {
		status = http.StatusOK // a handler that wrote nothing
	}
	rpcCode := ""
	switch proto {
	case bridgev1.Protocol_PROTOCOL_GRPC, bridgev1.Protocol_PROTOCOL_GRPC_WEB:
		h := w.Header()
		s := h.Get("Grpc-Status")
		if s == "" {
			s = h.Get(http.TrailerPrefix + "Grpc-Status")
		}
		rpcCode = grpcCode(s)
	case bridgev1.Protocol_PROTOCOL_CONNECT:
		rpcCode = x.rec.connectCode()
	case bridgev1.Protocol_PROTOCOL_HTTP1, bridgev1.Protocol_PROTOCOL_HTTP2:
		if ct := w.Header().Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
			proto = bridgev1.Protocol_PROTOCOL_SSE
		}
	}
	success := x.proxyErr == "" && status > 0 && status < 500 && status != http.StatusTooManyRequests &&
		(rpcCode == "" || rpcCode == "ok")

	if x.clientSpan != nil {
		if !success {
			x.clientSpan.SetStatus(codes.Error, rpcCode)
		}
		x.clientSpan.End()
	}
	if !success {
		span.SetStatus(codes.Error, x.proxyErr)
	}
	span.End()
	p.metrics.observe(rt, r.Method, status, elapsed)

	respSize, reqSize := x.rec.bytes, x.body.n.Load()
	if hc := x.rec.hijacked; hc != nil {
		respSize += hc.written.Load()
		reqSize += hc.read.Load()
	}
	if p.cfg.Sink != nil {
		if keep, weight := p.policy.Sample(rt, success); keep {
			p.emit(r, ctx, start, parent, sc, rt, proto, status, rpcCode, success, weight, elapsed, reqSize, respSize, x)
		}
	}
	x.rec.w = nil
	x.body = nil
	x.clientSpan = nil
	p.pool.Put(x)
}

func (p *Proxy) emit(r *http.Request, ctx context.Context, start time.Time, parent, sc trace.SpanContext,
	rt string, proto bridgev1.Protocol, status int, rpcCode string, success bool, weight float64,
	elapsed time.Duration, reqSize, respSize int64, x *exchange) {
	red := p.cfg.Redactor
	tc := &bridgev1.TraceContext{
		TraceId:    sc.TraceID().String(),
		SpanId:     sc.SpanID().String(),
		TraceFlags: uint32(sc.TraceFlags()),
	}
	if parent.IsValid() {
		tc.ParentSpanId = parent.SpanID().String()
	}
	corr := r.Header.Get("X-Correlation-Id")
	if corr == "" {
		corr = tc.TraceId
	} else {
		corr = red.String(corr)
	}
	typ := bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_RESPONSE_ANALYSIS
	if x.rec.status == 0 && x.proxyErr != "" {
		typ = bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_REQUEST_ANALYSIS
	}
	var user string
	for _, h := range p.cfg.UserHeaders {
		if v := r.Header.Get(h); v != "" {
			user = red.String(v)
			break
		}
	}
	var ttfb *durationpb.Duration
	if x.rec.ttfb > 0 {
		ttfb = durationpb.New(x.rec.ttfb)
	}
	method := r.Method
	if len(method) > 32 {
		method = method[:32]
	}
	ev := &bridgev1.CommunicationIntelligenceEvent{
		Envelope:      p.cfg.Source.Envelope(start, tc),
		EventType:     typ,
		CorrelationId: corr,
		RequestContext: &bridgev1.RequestContext{
			Method:        method,
			Path:          red.URL(r.URL),
			Route:         rt,
			PayloadSize:   reqSize,
			Headers:       red.Headers(r.Header, p.cfg.HeaderAllow),
			UserContext:   user,
			Protocol:      proto,
			SourceService: red.String(r.Header.Get("X-Omninode-Source-Service")),
		},
		PerformanceMetrics: &bridgev1.PerformanceMetrics{
			ResponseTime:     durationpb.New(elapsed),
			ResponseSize:     respSize,
			StatusCode:       int32(status),
			TargetService:    p.cfg.Service,
			Success:          success,
			RpcCode:          rpcCode,
			TimeToFirstByte:  ttfb,
			UpstreamEndpoint: p.upstream,
			ProxyError:       x.proxyErr,
		},
		SampleWeight:    max(weight, 1),
		PolicyDecisions: policy.Decisions(ctx),
	}
	p.cfg.Sink.Emit(ev)
}

// classify returns the request's protocol and what to sniff in the response.
func classify(r *http.Request, mcp bool) (bridgev1.Protocol, int) {
	h := r.Header
	ct := h.Get("Content-Type")
	switch {
	case r.ProtoMajor == 1 && strings.EqualFold(h.Get("Upgrade"), "websocket"):
		return bridgev1.Protocol_PROTOCOL_WEBSOCKET, sniffNone
	case strings.HasPrefix(ct, "application/grpc-web"):
		return bridgev1.Protocol_PROTOCOL_GRPC_WEB, sniffNone
	case strings.HasPrefix(ct, "application/grpc"):
		return bridgev1.Protocol_PROTOCOL_GRPC, sniffNone
	case strings.HasPrefix(ct, "application/connect+"):
		return bridgev1.Protocol_PROTOCOL_CONNECT, sniffConnectStream
	case h.Get("Connect-Protocol-Version") != "":
		return bridgev1.Protocol_PROTOCOL_CONNECT, sniffConnectUnary
	case mcp && r.Method == http.MethodPost && strings.HasPrefix(ct, "application/json"):
		return bridgev1.Protocol_PROTOCOL_MCP, sniffNone
	case strings.Contains(h.Get("Accept"), "text/event-stream"):
		return bridgev1.Protocol_PROTOCOL_SSE, sniffNone
	case r.ProtoMajor == 2:
		return bridgev1.Protocol_PROTOCOL_HTTP2, sniffNone
	}
	return bridgev1.Protocol_PROTOCOL_HTTP1, sniffNone
}
