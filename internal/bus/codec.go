package bus

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
)

// Record header names.
const (
	HeaderType        = "omninode-type"
	HeaderSchema      = "omninode-schema"
	HeaderEventID     = "omninode-event-id"
	HeaderTraceparent = "traceparent"
	// HeaderDLQReason carries why a record was dead-lettered.
	HeaderDLQReason = "omninode-dlq-reason"
	// HeaderDLQTopic carries the topic a dead-lettered record came from.
	HeaderDLQTopic = "omninode-dlq-topic"
)

// Sentinel errors of Decode and Validate. Every error they return wraps one
// of these, so callers can count rejections by reason with Reason.
var (
	// ErrUnknownType: the omninode-type header is missing or names no known event.
	ErrUnknownType = errors.New("unknown message type")
	// ErrTopicMismatch: the type does not belong on the record's topic.
	ErrTopicMismatch = errors.New("message type does not match topic")
	// ErrSchemaVersion: the omninode-schema header names a version this build cannot read.
	ErrSchemaVersion = errors.New("unsupported schema version")
	// ErrMalformed: the payload is not a valid protobuf encoding of the type.
	ErrMalformed = errors.New("malformed payload")
	// ErrInvalid: the event decoded but a required field is missing or out of range.
	ErrInvalid = errors.New("invalid event")
)

// Reason maps an error from Decode or Validate to a short label for metrics
// and the dead-letter header: unknown_type, topic_mismatch, schema_version,
// malformed, invalid, or other.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrUnknownType):
		return "unknown_type"
	case errors.Is(err, ErrTopicMismatch):
		return "topic_mismatch"
	case errors.Is(err, ErrSchemaVersion):
		return "schema_version"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	default:
		return "other"
	}
}

// Encode validates an event and builds its record: topic, key, value and
// headers. It never sends anything.
func Encode(ev Event) (*kgo.Record, error) {
	topic, err := TopicOf(ev)
	if err != nil {
		return nil, err
	}
	if err := Validate(ev); err != nil {
		return nil, err
	}
	// Not deterministic: sorting map fields (the allow-listed headers) costs
	// more than it is worth; nothing compares encoded bytes.
	value, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", TypeName(ev), err)
	}
	env := ev.GetEnvelope()
	r := &kgo.Record{
		Topic: topic,
		Key:   []byte(env.GetSource().GetInstance()),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderType, Value: []byte(TypeName(ev))},
			{Key: HeaderSchema, Value: []byte(strconv.Itoa(SchemaVersion))},
			{Key: HeaderEventID, Value: []byte(env.GetEventId())},
		},
	}
	if tp := Traceparent(env.GetTrace()); tp != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderTraceparent, Value: []byte(tp)})
	}
	return r, nil
}

// Decode turns a record back into its event and validates it. The record's
// omninode-type header selects the message; it must belong on the record's
// topic (an empty record topic skips that check).
func Decode(r *kgo.Record) (Event, error) {
	typ := header(r, HeaderType)
	if typ == "" {
		return nil, fmt.Errorf("%w: no %s header", ErrUnknownType, HeaderType)
	}
	t, ok := typeNames[typ]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, truncate(typ, 100))
	}
	if r.Topic != "" && r.Topic != t.topic {
		return nil, fmt.Errorf("%w: %s on topic %q", ErrTopicMismatch, typ, r.Topic)
	}
	if v := header(r, HeaderSchema); v != "" && v != strconv.Itoa(SchemaVersion) {
		return nil, fmt.Errorf("%w: %q (this build reads %d)", ErrSchemaVersion, truncate(v, 20), SchemaVersion)
	}
	ev := t.new()
	if err := proto.Unmarshal(r.Value, ev); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, typ, err)
	}
	if err := Validate(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// Validate checks the envelope and the fields each event type requires.
func Validate(ev Event) error {
	env := ev.GetEnvelope()
	if env == nil {
		return fmt.Errorf("%w: missing envelope", ErrInvalid)
	}
	if env.GetEventId() == "" {
		return fmt.Errorf("%w: missing envelope.event_id", ErrInvalid)
	}
	if _, err := uuid.Parse(env.GetEventId()); err != nil || len(env.GetEventId()) != 36 {
		return fmt.Errorf("%w: envelope.event_id %q is not a canonical UUID", ErrInvalid, truncate(env.GetEventId(), 40))
	}
	if env.GetOccurredAt() == nil {
		return fmt.Errorf("%w: missing envelope.occurred_at", ErrInvalid)
	}
	if err := env.GetOccurredAt().CheckValid(); err != nil {
		return fmt.Errorf("%w: envelope.occurred_at: %v", ErrInvalid, err)
	}
	src := env.GetSource()
	if src.GetService() == "" {
		return fmt.Errorf("%w: missing envelope.source.service", ErrInvalid)
	}
	if src.GetInstance() == "" {
		return fmt.Errorf("%w: missing envelope.source.instance", ErrInvalid)
	}
	if env.GetSequence() == 0 {
		return fmt.Errorf("%w: envelope.sequence must start at 1", ErrInvalid)
	}
	for _, s := range []string{src.GetService(), src.GetInstance(), src.GetVersion()} {
		if len(s) > 253 || !utf8.ValidString(s) {
			return fmt.Errorf("%w: envelope.source field too long or not UTF-8", ErrInvalid)
		}
	}
	switch e := ev.(type) {
	case *bridgev1.ServiceLifecycleEvent:
		if e.GetEventType() == bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_UNSPECIFIED {
			return fmt.Errorf("%w: lifecycle event_type unspecified", ErrInvalid)
		}
		if e.GetServiceInfo().GetName() == "" {
			return fmt.Errorf("%w: missing service_info.name", ErrInvalid)
		}
	case *bridgev1.ExecutionIntelligenceEvent:
		if e.GetEventType() == bridgev1.ExecutionEventType_EXECUTION_EVENT_TYPE_UNSPECIFIED {
			return fmt.Errorf("%w: execution event_type unspecified", ErrInvalid)
		}
		if e.GetCorrelationId() == "" {
			return fmt.Errorf("%w: missing correlation_id", ErrInvalid)
		}
		if e.GetPreContext().GetServiceName() == "" || e.GetPreContext().GetOperation() == "" {
			return fmt.Errorf("%w: missing pre_context.service_name or pre_context.operation", ErrInvalid)
		}
		if d := e.GetResults().GetExecutionTime(); d != nil && (d.CheckValid() != nil || d.AsDuration() < 0) {
			return fmt.Errorf("%w: results.execution_time invalid or negative", ErrInvalid)
		}
	case *bridgev1.CommunicationIntelligenceEvent:
		if e.GetEventType() == bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_UNSPECIFIED {
			return fmt.Errorf("%w: communication event_type unspecified", ErrInvalid)
		}
		if e.GetCorrelationId() == "" {
			return fmt.Errorf("%w: missing correlation_id", ErrInvalid)
		}
		if e.GetRequestContext().GetMethod() == "" {
			return fmt.Errorf("%w: missing request_context.method", ErrInvalid)
		}
		if e.GetPerformanceMetrics().GetTargetService() == "" {
			return fmt.Errorf("%w: missing performance_metrics.target_service", ErrInvalid)
		}
		if d := e.GetPerformanceMetrics().GetResponseTime(); d != nil && (d.CheckValid() != nil || d.AsDuration() < 0) {
			return fmt.Errorf("%w: performance_metrics.response_time invalid or negative", ErrInvalid)
		}
	case *bridgev1.ToolRegistrationEvent:
		if e.GetEventType() == bridgev1.ToolEventType_TOOL_EVENT_TYPE_UNSPECIFIED {
			return fmt.Errorf("%w: tool event_type unspecified", ErrInvalid)
		}
		if e.GetToolInfo().GetName() == "" || e.GetToolInfo().GetServiceSource() == "" {
			return fmt.Errorf("%w: missing tool_info.name or tool_info.service_source", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnknownType, ev)
	}
	return nil
}

// Traceparent renders a W3C traceparent header from a trace context, or ""
// when it has no valid trace and span id.
func Traceparent(tc *bridgev1.TraceContext) string {
	if len(tc.GetTraceId()) != 32 || len(tc.GetSpanId()) != 16 {
		return ""
	}
	const hexDigits = "0123456789abcdef"
	f := byte(tc.GetTraceFlags())
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = append(b, tc.GetTraceId()...)
	b = append(b, '-')
	b = append(b, tc.GetSpanId()...)
	b = append(b, '-', hexDigits[f>>4], hexDigits[f&0xf])
	return string(b)
}

// Header returns the value of a record header, or "".
func Header(r *kgo.Record, key string) string { return header(r, key) }

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
