package analyze

import (
	"fmt"
	"net/http"
	"time"

	"github.com/omninode/bridge/controlplane/analyze/stats"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

func durMs(d interface{ AsDuration() time.Duration }, ok bool) float64 {
	if !ok {
		return -1
	}
	return float64(d.AsDuration()) / float64(time.Millisecond)
}

func (a *Analyzer) lifecycle(e *bridgev1.ServiceLifecycleEvent) {
	a.eco.lifecycle(e, a.routes, a.cfg.Now())
}

func (a *Analyzer) execution(e *bridgev1.ExecutionIntelligenceEvent, o replayOpts) {
	pc, res := e.GetPreContext(), e.GetResults()
	env := e.GetEnvelope()
	svc, op := pc.GetServiceName(), pc.GetOperation()
	if svc == "" {
		svc = env.GetSource().GetService()
	}
	if svc == "" {
		a.mDropped.WithLabelValues("invalid").Inc()
		return
	}
	isTool := e.GetKind() == bridgev1.ExecutionKind_EXECUTION_KIND_MCP_TOOL_CALL
	if isTool && e.GetMcp().GetToolName() != "" {
		op = e.GetMcp().GetToolName()
	}
	at := env.GetOccurredAt().AsTime()
	if pc.GetTimestamp() != nil {
		at = pc.GetTimestamp().AsTime()
	}
	lat := durMs(res.GetExecutionTime(), res.GetExecutionTime() != nil)
	if lat < 0 {
		lat = 0
	}
	failed := !res.GetSuccess() || e.GetMcp().GetToolError() || e.GetMcp().GetJsonrpcErrorCode() != 0
	traceID := env.GetTrace().GetTraceId()
	evidence := traceID
	if evidence == "" {
		evidence = e.GetCorrelationId()
	}
	a.routes.add(routeKey{svc, op}, stats.Sample{At: at, LatencyMs: lat, Weight: 1, Failed: failed, TTFBMs: -1}, evidence)
	pattern := ""
	if failed {
		msg, code := res.GetError(), res.GetErrorCode()
		if code == "" && e.GetMcp().GetJsonrpcErrorCode() != 0 {
			code = fmt.Sprintf("jsonrpc %d", e.GetMcp().GetJsonrpcErrorCode())
		}
		if msg == "" {
			msg = "operation failed: " + code
		}
		pattern = a.pats.observe(msg, code, svc, op, at, o.countPatterns)
		if !o.countPatterns {
			pattern = "" // persisted patterns already hold this trace's root-cause vote
		}
	}
	a.traces.add(traceKeyOf(traceID, e.GetCorrelationId()), e.GetCorrelationId(), &span{
		id: env.GetTrace().GetSpanId(), parent: env.GetTrace().GetParentSpanId(), eventID: env.GetEventId(),
		service: svc, op: op, start: at, dur: time.Duration(lat * float64(time.Millisecond)),
		success: !failed, status: res.GetErrorCode(), err: res.GetError(), pattern: pattern, weight: 1,
	}, pc.GetSessionId(), at)
	if sid := pc.GetSessionId(); sid != "" {
		a.sess.add(sid, svc+" "+op, failed, at)
	}
	if isTool {
		a.tools.call(svc, op, stats.Sample{At: at, LatencyMs: lat, Weight: 1, Failed: failed, TTFBMs: -1})
	}
	a.eco.seen(svc, env.GetSource(), at)
}

func (a *Analyzer) communication(e *bridgev1.CommunicationIntelligenceEvent, o replayOpts) {
	env, rc, pm := e.GetEnvelope(), e.GetRequestContext(), e.GetPerformanceMetrics()
	target := pm.GetTargetService()
	if target == "" {
		target = env.GetSource().GetService()
	}
	if target == "" {
		a.mDropped.WithLabelValues("invalid").Inc()
		return
	}
	route := rc.GetRoute()
	if route == "" {
		route = rc.GetMethod() + " (unrouted)"
	}
	at := env.GetOccurredAt().AsTime()
	lat := durMs(pm.GetResponseTime(), pm.GetResponseTime() != nil)
	if lat < 0 {
		lat = 0
	}
	w := e.GetSampleWeight()
	if !(w >= 1) {
		w = 1
	}
	failed := !pm.GetSuccess()
	x := stats.Sample{At: at, LatencyMs: lat, Weight: w, Failed: failed, TTFBMs: durMs(pm.GetTimeToFirstByte(), pm.GetTimeToFirstByte() != nil)}
	traceID := env.GetTrace().GetTraceId()
	evidence := traceID
	if evidence == "" {
		evidence = e.GetCorrelationId()
	}
	a.routes.add(routeKey{target, route}, x, evidence)
	source := rc.GetSourceService()
	a.eco.edge(source, target, x)
	a.eco.seen(env.GetSource().GetService(), env.GetSource(), at)
	status := pm.GetRpcCode()
	if status == "" && pm.GetStatusCode() != 0 {
		status = fmt.Sprint(pm.GetStatusCode())
	}
	pattern, msg := "", ""
	if failed {
		msg = pm.GetProxyError()
		if msg == "" {
			text := pm.GetRpcCode()
			if text == "" {
				text = http.StatusText(int(pm.GetStatusCode()))
			}
			msg = fmt.Sprintf("upstream responded status_%d %s", pm.GetStatusCode(), text)
		}
		pattern = a.pats.observe(msg, status, target, route, at, o.countPatterns)
		if !o.countPatterns {
			pattern = "" // persisted patterns already hold this trace's root-cause vote
		}
	}
	a.traces.add(traceKeyOf(traceID, e.GetCorrelationId()), e.GetCorrelationId(), &span{
		id: env.GetTrace().GetSpanId(), parent: env.GetTrace().GetParentSpanId(), eventID: env.GetEventId(),
		service: target, source: source, op: route, start: at, dur: time.Duration(lat * float64(time.Millisecond)),
		success: !failed, status: status, err: msg, pattern: pattern, weight: w, server: true,
	}, "", at)
}

func traceKeyOf(traceID, correlationID string) string {
	if traceID != "" {
		return traceID
	}
	return correlationID
}
