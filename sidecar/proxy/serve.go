package proxy

import (
	"cmp"
	"context"
	"net/http"
	"runtime/debug"
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
	rm := p.metrics.route(p.routes.Template(r.URL.Path))
	rt := rm.label
	proto, mode := classify(r, p.cfg.MCP)
	// The event's sequence number is taken now, before the response can
	// reach the client: if the process dies after answering and before the
	// event is built or delivered, the number is a gap that counts the loss.
	// Only an event the sampling draw keeps whatever the outcome reserves
	// early, so that no reserved number goes unused.
	var draw policy.SampleDraw
	var seq uint64
	if p.cfg.Sink != nil {
		if draw = p.policy.Draw(rt); draw.Kept() {
			seq = p.cfg.Source.Reserve()
		}
	}

	x := p.pool.Get().(*exchange)
	x.rec.reset(w, start, mode)
	x.proxyErr, x.clientSpan = "", nil

	ctx := r.Context()
	var span trace.Span
	var parent, sc trace.SpanContext
	if p.lite {
		x.lt.start(r.Header)
		x.traceID = x.lt.traceIDHex()
	} else {
		ctx = p.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		parent = trace.SpanContextFromContext(ctx)
		ctx, span = p.tracer.Start(ctx, r.Method+" "+rt, serverKind)
		sc = span.SpanContext()
		x.traceID = sc.TraceID().String()
	}
	// The body counter is not pooled: the transport may still read or close
	// the request body after the round trip returned.
	wrapBody(r, x)
	// The route template lets route-scoped directives match; the recorder
	// collects the policies' decisions and the endpoint weighted routing chose.
	ctx = policy.WithRoute(policy.WithRecorder(context.WithValue(ctx, exchangeKey{}, x)), rt)
	panicked, stack := p.call(&x.rec, r.WithContext(ctx))
	elapsed := time.Since(start)
	if panicked != nil && x.proxyErr == "" {
		// httputil.ReverseProxy aborts (panics with http.ErrAbortHandler)
		// when copying the response body fails part way; the exchange still
		// gets its event before the panic goes on to net/http.
		x.proxyErr = "response_aborted"
		if panicked != http.ErrAbortHandler {
			x.proxyErr = "panic"
		}
	}

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
	if span != nil {
		if !success {
			span.SetStatus(codes.Error, x.proxyErr)
		}
		span.End()
	}
	p.metrics.observe(rm, r.Method, status, elapsed)

	respSize, reqSize := x.rec.bytes, x.body.n.Load()
	if hc := x.rec.hijacked; hc != nil {
		respSize += hc.written.Load()
		reqSize += hc.read.Load()
	}
	if p.cfg.Sink != nil {
		if keep, weight := p.policy.Keep(draw, success); keep {
			if seq == 0 {
				seq = p.cfg.Source.Reserve() // a failure kept although drawn out
			}
			if panicked == nil {
				p.flushComplete(w, r, x)
			}
			tc := &bridgev1.TraceContext{}
			if p.lite {
				tc.TraceId, tc.SpanId, tc.TraceFlags = x.lt.traceIDHex(), x.lt.spanIDHex(), uint32(x.lt.flags)
				tc.ParentSpanId = x.lt.parentIDHex()
			} else {
				tc.TraceId, tc.SpanId, tc.TraceFlags = x.traceID, sc.SpanID().String(), uint32(sc.TraceFlags())
				if parent.IsValid() {
					tc.ParentSpanId = parent.SpanID().String()
				}
			}
			p.emit(r, ctx, seq, start, tc, rt, proto, status, rpcCode, success, weight, elapsed, reqSize, respSize, x)
		}
	}
	if panicked != nil {
		// The exchange is not reused: the aborted connection may still
		// reach into it.
		if panicked != http.ErrAbortHandler {
			p.log.Error("proxy handler panicked", "route", rt, "panic", panicked, "stack", string(stack))
		}
		panic(panicked)
	}
	x.rec.w = nil
	x.body = nil
	x.clientSpan = nil
	x.lt.state, x.lt.text = "", ""
	p.pool.Put(x)
}

// flushComplete sends a complete HTTP/1 response to the client before the
// event is built, so that building it does not delay the response: the
// server would otherwise flush only when ServeHTTP returns. It flushes only
// when the whole body (as its Content-Length says) has been written, so
// the client has nothing left to wait for and no framing changes.
func (p *Proxy) flushComplete(w http.ResponseWriter, r *http.Request, x *exchange) {
	if r.ProtoMajor != 1 || x.rec.status == 0 || x.rec.hijacked != nil || x.rec.bytes == 0 {
		return
	}
	cl := w.Header()["Content-Length"]
	if len(cl) != 1 || !decimalEquals(cl[0], x.rec.bytes) {
		return
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// decimalEquals reports whether s is the decimal form of n.
func decimalEquals(s string, n int64) bool {
	if len(s) == 0 || len(s) > 18 {
		return false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		v = v*10 + int64(c-'0')
	}
	return v == n
}

// call runs the handler and returns what it panicked with, if it did, and
// where (except for http.ErrAbortHandler, the routine abort).
func (p *Proxy) call(w http.ResponseWriter, r *http.Request) (panicked any, stack []byte) {
	defer func() {
		if panicked = recover(); panicked != nil && panicked != http.ErrAbortHandler {
			stack = debug.Stack() // still the panicking goroutine's frames
		}
	}()
	p.handler.ServeHTTP(w, r)
	return nil, nil
}

func (p *Proxy) emit(r *http.Request, ctx context.Context, seq uint64, start time.Time, tc *bridgev1.TraceContext,
	rt string, proto bridgev1.Protocol, status int, rpcCode string, success bool, weight float64,
	elapsed time.Duration, reqSize, respSize int64, x *exchange) {
	red := p.cfg.Redactor
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
	for _, h := range p.userHeaders {
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
	src := ""
	if v := r.Header["X-Omninode-Source-Service"]; len(v) > 0 {
		src = red.String(v[0])
	}
	env := p.cfg.Source.EnvelopeAt(seq, start, tc)
	if id := policy.ChosenEventID(ctx); id != "" {
		env.EventId = id // a critical signal on the directive stream named it
	}
	ev := &bridgev1.CommunicationIntelligenceEvent{
		Envelope:      env,
		EventType:     typ,
		CorrelationId: corr,
		RequestContext: &bridgev1.RequestContext{
			Method:        method,
			Path:          red.URL(r.URL),
			Route:         rt,
			PayloadSize:   reqSize,
			Headers:       p.eventHeaders(r.Header),
			UserContext:   user,
			Protocol:      proto,
			SourceService: src,
		},
		PerformanceMetrics: &bridgev1.PerformanceMetrics{
			ResponseTime:     durationpb.New(elapsed),
			ResponseSize:     respSize,
			StatusCode:       int32(status),
			TargetService:    p.cfg.Service,
			Success:          success,
			RpcCode:          rpcCode,
			TimeToFirstByte:  ttfb,
			UpstreamEndpoint: cmp.Or(policy.Endpoint(ctx), p.upstream),
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
