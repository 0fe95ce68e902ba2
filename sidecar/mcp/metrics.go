package mcp

import "github.com/prometheus/client_golang/prometheus"

// Label values.
const (
	dirRequest  = "request"  // client to server
	dirResponse = "response" // server to client

	dropTooLarge   = "too_large"   // a message over MaxCaptureBytes
	dropQueueFull  = "queue_full"  // the exchange's decoder fell behind
	dropParseError = "parse_error" // JSON that is not JSON-RPC, or malformed

	outcomeOK         = "ok"
	outcomeRPCError   = "jsonrpc_error"
	outcomeToolError  = "tool_error"
	outcomeNoResponse = "no_response"
	toolDiscovered    = "discovered"
	toolUpdated       = "updated"
	toolRemoved       = "removed"
	kindLabelRequest  = "request"
	kindLabelNotify   = "notification"
	kindLabelResponse = "response"
)

// metrics are the capture's Prometheus metrics; labels are fixed
// vocabularies, never tool names or payload data.
type metrics struct {
	messages   *prometheus.CounterVec // direction, kind
	dropped    *prometheus.CounterVec // reason
	calls      *prometheus.CounterVec // outcome
	toolEvents *prometheus.CounterVec // type
	tools      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_mcp_messages_total", Help: "JSON-RPC messages captured, by direction and kind.",
		}, []string{"direction", "kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_mcp_capture_dropped_total", Help: "Payloads not captured (traffic unaffected), by reason.",
		}, []string{"reason"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_mcp_tool_calls_total", Help: "tools/call exchanges captured, by outcome.",
		}, []string{"outcome"}),
		toolEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnibridge_mcp_tool_events_total", Help: "Tool registration events built, by type.",
		}, []string{"type"}),
		tools: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "omnibridge_mcp_tools", Help: "Tools currently known from tools/list results.",
		}),
	}
	for _, c := range []prometheus.Collector{m.messages, m.dropped, m.calls, m.toolEvents, m.tools} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{dirRequest, dirResponse} {
		for _, k := range []string{kindLabelRequest, kindLabelNotify, kindLabelResponse} {
			m.messages.WithLabelValues(d, k)
		}
	}
	for _, r := range []string{dropTooLarge, dropQueueFull, dropParseError} {
		m.dropped.WithLabelValues(r)
	}
	for _, o := range []string{outcomeOK, outcomeRPCError, outcomeToolError, outcomeNoResponse} {
		m.calls.WithLabelValues(o)
	}
	for _, t := range []string{toolDiscovered, toolUpdated, toolRemoved} {
		m.toolEvents.WithLabelValues(t)
	}
	return m, nil
}

func kindLabel(k Kind) string {
	switch k {
	case KindRequest:
		return kindLabelRequest
	case KindNotification:
		return kindLabelNotify
	default:
		return kindLabelResponse
	}
}
