// Package hooks is the sidecar's hook receiver: the HTTP endpoints through
// which the service behind the sidecar reports its own lifecycle (started,
// stopped, health changes, with capabilities, endpoints and dependencies) and
// its executions (pre-context and results, joined by correlation id).
//
// The same two messages (bridgev1.ReportLifecycleRequest and
// ReportExecutionRequest) are accepted as JSON at POST /v1/hooks/lifecycle and
// POST /v1/hooks/execution and through the Connect HookService (Connect,
// gRPC and gRPC-Web) on one handler; see docs/hooks.md for the schema.
//
// It owns validation (a malformed or oversized hook gets a 4xx with a reason
// and is counted; nothing is half-stored), the bounded store of pre-contexts
// waiting for their results, idempotency keys, and the building of
// hooks.service_lifecycle and hooks.execution_intelligence events. Every
// parameter, output and error passes through the redactor before an event is
// built. It hands events to a Sink and must never block on the bus or do I/O
// of its own besides answering the request.
package hooks
