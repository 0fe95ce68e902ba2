package hooks

import (
	"unicode"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// Caps on hook fields. Longer values are rejected (field_too_long), not cut:
// a hook is the service's own structured report, so an overlong field is a
// bug the service should hear about.
const (
	maxNameBytes        = 253
	maxVersionBytes     = 128
	maxListItems        = 256
	maxItemBytes        = 255
	maxURLBytes         = 2048
	maxProtocolBytes    = 32
	maxReasonBytes      = 1024
	maxKeyBytes         = 256
	maxCorrelationBytes = 128
	maxOperationBytes   = 255
	maxSessionBytes     = 256
	maxErrorBytes       = 64 << 10
	maxErrorCodeBytes   = 128
)

func checkLen(field, s string, max int) *rejectError {
	if len(s) > max {
		return reject(ReasonTooLong, "%s is %d bytes, at most %d", field, len(s), max)
	}
	return nil
}

func validateLifecycle(req *bridgev1.ReportLifecycleRequest, service string) *rejectError {
	switch req.GetEventType() {
	case bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_UNSPECIFIED:
		return reject(ReasonMissingField, "event_type is required")
	case bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED,
		bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED,
		bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE:
	default:
		return reject(ReasonOutOfRange, "event_type %d is not a known value", req.GetEventType())
	}
	if _, ok := bridgev1.HealthStatus_name[int32(req.GetHealth())]; !ok {
		return reject(ReasonOutOfRange, "health %d is not a known value", req.GetHealth())
	}
	if req.GetEventType() == bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE &&
		req.GetHealth() == bridgev1.HealthStatus_HEALTH_STATUS_UNSPECIFIED {
		return reject(ReasonMissingField, "health is required for a health change")
	}
	si := req.GetServiceInfo()
	if n := si.GetName(); n != "" && n != service {
		return reject(ReasonServiceMismatch, "service_info.name must be this sidecar's service %q (or empty)", service)
	}
	if e := checkLen("service_info.version", si.GetVersion(), maxVersionBytes); e != nil {
		return e
	}
	if e := checkList("service_info.capabilities", si.GetCapabilities(), maxItemBytes); e != nil {
		return e
	}
	if e := checkList("service_info.dependencies", si.GetDependencies(), maxNameBytes); e != nil {
		return e
	}
	if len(si.GetEndpoints()) > maxListItems {
		return reject(ReasonTooLong, "service_info.endpoints has %d items, at most %d", len(si.GetEndpoints()), maxListItems)
	}
	for _, ep := range si.GetEndpoints() {
		if ep.GetUrl() == "" {
			return reject(ReasonMissingField, "service_info.endpoints[].url is required")
		}
		if e := checkLen("service_info.endpoints[].url", ep.GetUrl(), maxURLBytes); e != nil {
			return e
		}
		if e := checkLen("service_info.endpoints[].protocol", ep.GetProtocol(), maxProtocolBytes); e != nil {
			return e
		}
	}
	if e := checkLen("health_reason", req.GetHealthReason(), maxReasonBytes); e != nil {
		return e
	}
	return checkLen("idempotency_key", req.GetIdempotencyKey(), maxKeyBytes)
}

func checkList(field string, items []string, maxItem int) *rejectError {
	if len(items) > maxListItems {
		return reject(ReasonTooLong, "%s has %d items, at most %d", field, len(items), maxListItems)
	}
	for _, it := range items {
		if it == "" {
			return reject(ReasonMissingField, "%s has an empty item", field)
		}
		if e := checkLen(field+"[]", it, maxItem); e != nil {
			return e
		}
	}
	return nil
}

func validateExecution(req *bridgev1.ReportExecutionRequest) *rejectError {
	id := req.GetCorrelationId()
	if id == "" {
		return reject(ReasonMissingField, "correlation_id is required")
	}
	if e := checkLen("correlation_id", id, maxCorrelationBytes); e != nil {
		return e
	}
	for _, c := range id {
		if unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return reject(ReasonOutOfRange, "correlation_id must be printable without spaces")
		}
	}
	if req.GetPreContext() == nil && req.GetResults() == nil {
		return reject(ReasonMissingField, "pre_context or results is required")
	}
	if pc := req.GetPreContext(); pc != nil {
		if pc.GetOperation() == "" {
			return reject(ReasonMissingField, "pre_context.operation is required")
		}
		if e := checkLen("pre_context.operation", pc.GetOperation(), maxOperationBytes); e != nil {
			return e
		}
		if e := checkLen("pre_context.session_id", pc.GetSessionId(), maxSessionBytes); e != nil {
			return e
		}
		if ts := pc.GetTimestamp(); ts != nil && ts.CheckValid() != nil {
			return reject(ReasonOutOfRange, "pre_context.timestamp is not a valid time")
		}
	}
	if res := req.GetResults(); res != nil {
		d := res.GetExecutionTime()
		if d == nil {
			return reject(ReasonMissingField, "results.execution_time is required")
		}
		if d.CheckValid() != nil || d.AsDuration() < 0 || d.AsDuration() > MaxExecutionTime {
			return reject(ReasonOutOfRange, "results.execution_time must be between 0 and 24h")
		}
		if e := checkLen("results.error", res.GetError(), maxErrorBytes); e != nil {
			return e
		}
		if e := checkLen("results.error_code", res.GetErrorCode(), maxErrorCodeBytes); e != nil {
			return e
		}
	}
	return checkLen("idempotency_key", req.GetIdempotencyKey(), maxKeyBytes)
}
