package store

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/proto"
)

// eventTable describes one partitioned event table: its name, id column and
// the COPY columns, in the order row() returns values.
type eventTable struct {
	name    string
	idCol   string
	columns []string
}

// The four event tables, partitioned by day on created_at.
var (
	tableExecution = eventTable{"execution_intelligence", "execution_id", []string{
		"execution_id", "correlation_id", "service_name", "operation", "execution_time_ms", "success",
		"intelligence_data", "created_at", "source_instance", "sequence", "payload"}}
	tableCommunication = eventTable{"communication_intelligence", "communication_id", []string{
		"communication_id", "correlation_id", "source_service", "target_service", "request_data", "response_data",
		"performance_metrics", "intelligence_insights", "created_at", "status_code", "success", "response_time_ms",
		"route", "source_instance", "sequence", "payload"}}
	tableLifecycle = eventTable{"service_lifecycle_events", "event_id", []string{
		"event_id", "service_name", "event_type", "health", "service_version", "created_at", "source_instance",
		"sequence", "payload"}}
	tableTools = eventTable{"tool_registration_events", "event_id", []string{
		"event_id", "tool_name", "service_source", "event_type", "schema_hash", "created_at", "source_instance",
		"sequence", "payload"}}
)

// eventTables lists every partitioned event table.
var eventTables = []eventTable{tableExecution, tableCommunication, tableLifecycle, tableTools}

// tableFor returns the table an event is stored in.
func tableFor(ev bus.Event) (int, error) {
	switch ev.(type) {
	case *bridgev1.ExecutionIntelligenceEvent:
		return 0, nil
	case *bridgev1.CommunicationIntelligenceEvent:
		return 1, nil
	case *bridgev1.ServiceLifecycleEvent:
		return 2, nil
	case *bridgev1.ToolRegistrationEvent:
		return 3, nil
	}
	return 0, fmt.Errorf("store event: %w: %T", bus.ErrUnknownType, ev)
}

// text makes s storable in a PostgreSQL text column, which rejects NUL bytes
// and invalid UTF-8.
func text(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// occurredAt returns the event's time in UTC.
func occurredAt(ev bus.Event) time.Time { return ev.GetEnvelope().GetOccurredAt().AsTime().UTC() }

// row converts a validated event into its table's COPY values.
func row(ev bus.Event) ([]any, error) {
	env := ev.GetEnvelope()
	id, err := uuid.Parse(env.GetEventId())
	if err != nil {
		return nil, fmt.Errorf("parse event id: %w", err)
	}
	payload, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal event %s: %w", env.GetEventId(), err)
	}
	at := occurredAt(ev)
	inst := text(env.GetSource().GetInstance())
	seq := int64(env.GetSequence())
	switch e := ev.(type) {
	case *bridgev1.ExecutionIntelligenceEvent:
		res := e.GetResults()
		ms := res.GetExecutionTime().AsDuration().Milliseconds()
		if ms > 1<<31-1 {
			ms = 1<<31 - 1
		}
		return []any{[16]byte(id), text(e.GetCorrelationId()), text(e.GetPreContext().GetServiceName()),
			text(e.GetPreContext().GetOperation()), int32(ms), res.GetSuccess(), executionData(e),
			at, inst, seq, payload}, nil
	case *bridgev1.CommunicationIntelligenceEvent:
		req, pm := e.GetRequestContext(), e.GetPerformanceMetrics()
		req0, resp, perf, ins := communicationData(e)
		return []any{[16]byte(id), text(e.GetCorrelationId()), text(req.GetSourceService()),
			text(pm.GetTargetService()), req0, resp, perf, ins, at, pm.GetStatusCode(), communicationSuccess(e),
			durationMs(pm.GetResponseTime().AsDuration()), text(req.GetRoute()), inst, seq, payload}, nil
	case *bridgev1.ServiceLifecycleEvent:
		return []any{[16]byte(id), text(e.GetServiceInfo().GetName()), int16(e.GetEventType()), int16(e.GetHealth()),
			text(e.GetServiceInfo().GetVersion()), at, inst, seq, payload}, nil
	case *bridgev1.ToolRegistrationEvent:
		return []any{[16]byte(id), text(e.GetToolInfo().GetName()), text(e.GetToolInfo().GetServiceSource()),
			int16(e.GetEventType()), text(e.GetToolInfo().GetSchemaHash()), at, inst, seq, payload}, nil
	}
	return nil, fmt.Errorf("store event: %w: %T", bus.ErrUnknownType, ev)
}

// communicationSuccess is the stored success flag: the sidecar's verdict,
// and never true for a 5xx.
func communicationSuccess(e *bridgev1.CommunicationIntelligenceEvent) bool {
	pm := e.GetPerformanceMetrics()
	return pm.GetSuccess() && pm.GetStatusCode() < 500
}

func durationMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// executionData is the intelligence_data JSONB of an execution.
func executionData(e *bridgev1.ExecutionIntelligenceEvent) []byte {
	w := newJSON(nil)
	pc, res, ins := e.GetPreContext(), e.GetResults(), e.GetIntelligenceInsights()
	w.str("kind", e.GetKind().String())
	w.strNonEmpty("session_id", text(pc.GetSessionId()))
	w.strNonEmpty("error", text(res.GetError()))
	w.strNonEmpty("error_code", text(res.GetErrorCode()))
	w.float("execution_time_ms", durationMs(res.GetExecutionTime().AsDuration()))
	w.structField("parameters", pc.GetParameters())
	w.structField("output", res.GetOutput())
	if ins != nil {
		sub := newJSON(nil)
		sub.float("operation_success_rate", ins.GetOperationSuccessRate())
		sub.str("performance_trend", ins.GetPerformanceTrend().String())
		sub.strs("failure_patterns", cleanAll(ins.GetFailurePatterns()))
		sub.float("vs_historical_avg", ins.GetVsHistoricalAvg())
		w.raw("insights", sub.bytes())
	}
	if m := e.GetMcp(); m != nil {
		sub := newJSON(nil)
		sub.str("tool_name", text(m.GetToolName()))
		sub.int("argument_bytes", m.GetArgumentBytes())
		sub.strNonEmpty("session_id", text(m.GetSessionId()))
		sub.int("jsonrpc_error_code", int64(m.GetJsonrpcErrorCode()))
		sub.bool("tool_error", m.GetToolError())
		sub.strNonEmpty("request_id", text(m.GetRequestId()))
		w.raw("mcp", sub.bytes())
	}
	return w.bytes()
}

// communicationData returns the request_data, response_data,
// performance_metrics and intelligence_insights JSONB of a communication.
func communicationData(e *bridgev1.CommunicationIntelligenceEvent) (req, resp, perf, ins []byte) {
	rc, pm, an := e.GetRequestContext(), e.GetPerformanceMetrics(), e.GetIntelligenceAnalysis()
	w := newJSON(nil)
	w.str("method", text(rc.GetMethod()))
	w.str("path", text(rc.GetPath()))
	w.str("route", text(rc.GetRoute()))
	w.int("payload_size", rc.GetPayloadSize())
	w.str("protocol", rc.GetProtocol().String())
	w.strNonEmpty("source_service", text(rc.GetSourceService()))
	w.strNonEmpty("user_context", text(rc.GetUserContext()))
	if len(rc.GetHeaders()) > 0 {
		h := make(map[string]string, len(rc.GetHeaders()))
		for k, v := range rc.GetHeaders() {
			h[text(k)] = text(v)
		}
		w.strMap("headers", h)
	}
	req = w.bytes()

	w = newJSON(nil)
	w.int("status_code", int64(pm.GetStatusCode()))
	w.int("response_size", pm.GetResponseSize())
	w.bool("success", communicationSuccess(e))
	w.strNonEmpty("rpc_code", text(pm.GetRpcCode()))
	w.strNonEmpty("proxy_error", text(pm.GetProxyError()))
	w.bool("cache_hit", pm.GetCacheHit())
	resp = w.bytes()

	w = newJSON(nil)
	w.float("response_time_ms", durationMs(pm.GetResponseTime().AsDuration()))
	w.float("time_to_first_byte_ms", durationMs(pm.GetTimeToFirstByte().AsDuration()))
	w.int("retries", int64(pm.GetRetries()))
	w.strNonEmpty("upstream_endpoint", text(pm.GetUpstreamEndpoint()))
	w.float("sample_weight", e.GetSampleWeight())
	perf = w.bytes()

	w = newJSON(nil)
	w.strs("optimization_opportunities", cleanAll(an.GetOptimizationOpportunities()))
	if ux := an.GetUserExperienceImpact(); ux != nil {
		sub := newJSON(nil)
		sub.str("level", ux.GetLevel().String())
		sub.strNonEmpty("reason", text(ux.GetReason()))
		w.raw("user_experience_impact", sub.bytes())
	}
	w.structField("pattern_analysis", an.GetPatternAnalysis())
	if pds := e.GetPolicyDecisions(); len(pds) > 0 {
		w.key("policy_decisions")
		w.b = append(w.b, '[')
		for i, pd := range pds {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			sub := newJSON(nil)
			sub.str("directive_id", text(pd.GetDirectiveId()))
			sub.int("directive_version", int64(pd.GetDirectiveVersion()))
			sub.str("action", pd.GetAction().String())
			sub.bool("dry_run", pd.GetDryRun())
			w.b = append(w.b, sub.bytes()...)
		}
		w.b = append(w.b, ']')
	}
	ins = w.bytes()
	return req, resp, perf, ins
}

func cleanAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = text(s)
	}
	return out
}
