package hooks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/redact"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func eventID(t *testing.T, body string) string {
	t.Helper()
	var r struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("response %q: %v", body, err)
	}
	return r.EventID
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"no service", func(c *Config) { c.Service = "" }, "Service"},
		{"tiny body", func(c *Config) { c.MaxBodyBytes = 10 }, "MaxBodyBytes"},
		{"short ttl", func(c *Config) { c.PendingTTL = time.Millisecond }, "PendingTTL"},
		{"negative pending", func(c *Config) { c.MaxPending = -1 }, "MaxPending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig(service)
			tc.mod(&cfg)
			err := cfg.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want error naming %q", err, tc.want)
			}
		})
	}
}

func TestLifecycleJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	status, body := e.post(t, PathLifecycle, `{
		"event_type": "LIFECYCLE_EVENT_TYPE_SERVICE_STARTED",
		"service_info": {"version": "1.4.2", "capabilities": ["orders.create", "orders.get"],
			"endpoints": [{"url": "http://admin:pw@10.0.0.5:8080/orders?token=abc&x=1", "protocol": "http"}],
			"dependencies": ["inventory", "payments"]},
		"health": "HEALTH_STATUS_HEALTHY"}`, map[string]string{"traceparent": traceparent})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	evs := e.sink.all()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0].(*bridgev1.ServiceLifecycleEvent)
	if ev.GetEnvelope().GetEventId() != eventID(t, body) {
		t.Errorf("response event_id %s != event %s", eventID(t, body), ev.GetEnvelope().GetEventId())
	}
	if err := bus.Validate(ev); err != nil {
		t.Fatalf("event invalid: %v", err)
	}
	si := ev.GetServiceInfo()
	if ev.GetEventType() != bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED || si.GetName() != service ||
		si.GetVersion() != "1.4.2" || strings.Join(si.GetCapabilities(), ",") != "orders.create,orders.get" ||
		strings.Join(si.GetDependencies(), ",") != "inventory,payments" || ev.GetHealth() != bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY {
		t.Errorf("event fields: %v", ev)
	}
	if got := si.GetEndpoints()[0].GetUrl(); got != "http://10.0.0.5:8080/orders?token=REDACTED&x=1" {
		t.Errorf("endpoint url %q", got)
	}
	md := ev.GetIntelligenceMetadata()
	if md.GetDiscoveryMethod() != bridgev1.DiscoveryMethod_DISCOVERY_METHOD_HOOK || !md.GetRegistrationAutomatic() || md.GetCapabilityExtraction() != "declared" {
		t.Errorf("intelligence metadata %v", md)
	}
	tr := ev.GetEnvelope().GetTrace()
	if tr.GetTraceId() != "4bf92f3577b34da6a3ce929d0e0e4736" || tr.GetSpanId() != "00f067aa0ba902b7" || tr.GetTraceFlags() != 1 {
		t.Errorf("trace %v", tr)
	}

	// A health change carries the previous health.
	status, body = e.post(t, PathLifecycle, `{"eventType": "LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE", "serviceInfo": {"name": "orders"},
		"health": "HEALTH_STATUS_DEGRADED", "healthReason": "db pool exhausted"}`, nil)
	if status != http.StatusOK {
		t.Fatalf("health change: %d %s", status, body)
	}
	hc := e.sink.all()[1].(*bridgev1.ServiceLifecycleEvent)
	if hc.GetPreviousHealth() != bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY || hc.GetHealth() != bridgev1.HealthStatus_HEALTH_STATUS_DEGRADED ||
		hc.GetHealthReason() != "db pool exhausted" || hc.GetEnvelope().GetSequence() != ev.GetEnvelope().GetSequence()+1 {
		t.Errorf("health change event %v", hc)
	}
}

func TestExecutionJoin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	status, body := e.post(t, PathExecution, `{"correlation_id": "c-1", "pre_context": {"session_id": "s-9",
		"operation": "reserve_stock", "parameters": {"sku": "A1", "qty": 2, "password": "hunter2"},
		"timestamp": "2026-12-06T11:59:59Z"}}`, map[string]string{"traceparent": traceparent})
	if status != http.StatusOK || eventID(t, body) != "" {
		t.Fatalf("pre-context: %d %s", status, body)
	}
	if len(e.sink.all()) != 0 {
		t.Fatal("pre-context alone emitted an event")
	}
	if got := e.metric(t, "omnibridge_hooks_pending"); got != 1 {
		t.Errorf("pending gauge %v", got)
	}
	e.clock.Advance(time.Second)
	status, body = e.post(t, PathExecution, `{"correlation_id": "c-1", "results": {"success": false,
		"output": {"reserved": 0, "secret": "s3"}, "error": "db said: password=hunter2", "execution_time": "0.250s",
		"error_code": "UNAVAILABLE"}}`, nil)
	if status != http.StatusOK {
		t.Fatalf("results: %d %s", status, body)
	}
	evs := e.sink.all()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0].(*bridgev1.ExecutionIntelligenceEvent)
	if ev.GetEnvelope().GetEventId() != eventID(t, body) || bus.Validate(ev) != nil {
		t.Fatalf("event id/validity: %v", ev)
	}
	pc, res := ev.GetPreContext(), ev.GetResults()
	params := pc.GetParameters().AsMap()
	if ev.GetCorrelationId() != "c-1" || ev.GetKind() != bridgev1.ExecutionKind_EXECUTION_KIND_HOOK ||
		ev.GetEventType() != bridgev1.ExecutionEventType_EXECUTION_EVENT_TYPE_EXECUTION_COMPLETED ||
		pc.GetOperation() != "reserve_stock" || pc.GetServiceName() != service || pc.GetSessionId() != "s-9" ||
		params["sku"] != "A1" || params["qty"] != float64(2) || params["password"] != redact.Redacted ||
		!pc.GetTimestamp().AsTime().Equal(time.Date(2026, 12, 6, 11, 59, 59, 0, time.UTC)) {
		t.Errorf("pre_context %v", pc)
	}
	if res.GetSuccess() || res.GetOutput().AsMap()["secret"] != redact.Redacted || res.GetOutput().AsMap()["reserved"] != float64(0) ||
		res.GetError() != "db said: password=REDACTED" || res.GetExecutionTime().AsDuration() != 250*time.Millisecond ||
		res.GetErrorCode() != "UNAVAILABLE" {
		t.Errorf("results %v", res)
	}
	// The pre-context's trace carries over to the event.
	if ev.GetEnvelope().GetTrace().GetTraceId() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace %v", ev.GetEnvelope().GetTrace())
	}
	if got := e.metric(t, "omnibridge_hooks_pending"); got != 0 {
		t.Errorf("pending after join %v", got)
	}
	// Same correlation id again: the pre-context was consumed.
	status, _ = e.post(t, PathExecution, `{"correlation_id": "c-1", "results": {"success": true, "execution_time": "1s"}}`, nil)
	if status != http.StatusOK {
		t.Fatal(status)
	}
	if op := e.sink.all()[1].(*bridgev1.ExecutionIntelligenceEvent).GetPreContext().GetOperation(); op != unknownOperation {
		t.Errorf("second results matched a consumed pre-context: %q", op)
	}
}

func TestExecutionOneCallAndResultsAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	status, body := e.post(t, PathExecution, `{"correlation_id": "c-2", "pre_context": {"operation": "ship"},
		"results": {"success": true, "execution_time": "2s"}}`, nil)
	if status != http.StatusOK || eventID(t, body) == "" {
		t.Fatalf("one call: %d %s", status, body)
	}
	ev := e.sink.all()[0].(*bridgev1.ExecutionIntelligenceEvent)
	// The start time defaults to arrival minus the execution time.
	if ev.GetPreContext().GetOperation() != "ship" || !ev.GetPreContext().GetTimestamp().AsTime().Equal(e.clock.Now().Add(-2*time.Second)) {
		t.Errorf("one-call event %v", ev.GetPreContext())
	}
	status, _ = e.post(t, PathExecution, `{"correlation_id": "orphan", "results": {"success": true, "execution_time": "0s"}}`, nil)
	if status != http.StatusOK || len(e.sink.all()) != 2 {
		t.Fatalf("results alone: %d, %d events", status, len(e.sink.all()))
	}
	if got := e.metric(t, "omnibridge_hooks_unmatched_results_total"); got != 1 {
		t.Errorf("unmatched %v", got)
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := `{"correlation_id": "c-3", "pre_context": {"operation": "x"}, "results": {"success": true, "execution_time": "1s"}, "idempotency_key": "k-1"}`
	_, first := e.post(t, PathExecution, body, nil)
	_, second := e.post(t, PathExecution, body, nil)
	if eventID(t, first) == "" || eventID(t, first) != eventID(t, second) {
		t.Fatalf("repeat got another answer: %s vs %s", first, second)
	}
	lc := `{"event_type": "LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED", "idempotency_key": "k-1"}`
	_, l1 := e.post(t, PathLifecycle, lc, nil)
	_, l2 := e.post(t, PathLifecycle, lc, nil)
	if eventID(t, l1) == eventID(t, first) || eventID(t, l1) != eventID(t, l2) {
		t.Fatalf("lifecycle keys: %s %s (execution %s)", l1, l2, first)
	}
	if n := len(e.sink.all()); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	if got := e.metric(t, `omnibridge_hooks_duplicates_total{kind="execution"}`); got != 1 {
		t.Errorf("duplicates %v", got)
	}
	// After the idempotency window the key is new again.
	e.clock.Advance(DefaultIdempotencyTTL + time.Second)
	_, third := e.post(t, PathExecution, body, nil)
	if eventID(t, third) == eventID(t, first) || len(e.sink.all()) != 3 {
		t.Errorf("key still remembered after its TTL")
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	big := `{"correlation_id": "c", "pre_context": {"operation": "x", "parameters": {"blob": "` + strings.Repeat("a", 5000) + `"}}}`
	for _, tc := range []struct {
		name, path, body, ctype string
		method                  string
		status                  int
		reason                  string
	}{
		{"not json", PathExecution, `{`, "", "", 400, ReasonMalformed},
		{"unknown field", PathExecution, `{"correlation_id": "c", "bogus": 1}`, "", "", 400, ReasonMalformed},
		{"wrong type", PathLifecycle, `{"event_type": {}}`, "", "", 400, ReasonMalformed},
		{"content type", PathLifecycle, `{}`, "text/plain", "", 415, ReasonContentType},
		{"method", PathLifecycle, ``, "", http.MethodGet, 405, ReasonMethod},
		{"too large", PathExecution, big, "", "", 413, ReasonTooLarge},
		{"no event type", PathLifecycle, `{}`, "", "", 400, ReasonMissingField},
		{"unknown enum number", PathLifecycle, `{"event_type": 42}`, "", "", 400, ReasonOutOfRange},
		{"other service", PathLifecycle, `{"event_type": 1, "service_info": {"name": "payments"}}`, "", "", 400, ReasonServiceMismatch},
		{"health change without health", PathLifecycle, `{"event_type": 3}`, "", "", 400, ReasonMissingField},
		{"too many capabilities", PathLifecycle, `{"event_type": 1, "service_info": {"capabilities": [` + strings.TrimSuffix(strings.Repeat(`"c",`, 300), ",") + `]}}`, "", "", 400, ReasonTooLong},
		{"endpoint without url", PathLifecycle, `{"event_type": 1, "service_info": {"endpoints": [{"protocol": "http"}]}}`, "", "", 400, ReasonMissingField},
		{"no correlation id", PathExecution, `{"pre_context": {"operation": "x"}}`, "", "", 400, ReasonMissingField},
		{"correlation id with space", PathExecution, `{"correlation_id": "a b", "pre_context": {"operation": "x"}}`, "", "", 400, ReasonOutOfRange},
		{"nothing to report", PathExecution, `{"correlation_id": "c"}`, "", "", 400, ReasonMissingField},
		{"no operation", PathExecution, `{"correlation_id": "c", "pre_context": {}}`, "", "", 400, ReasonMissingField},
		{"operation too long", PathExecution, `{"correlation_id": "c", "pre_context": {"operation": "` + strings.Repeat("o", 300) + `"}}`, "", "", 400, ReasonTooLong},
		{"no execution time", PathExecution, `{"correlation_id": "c", "results": {"success": true}}`, "", "", 400, ReasonMissingField},
		{"negative execution time", PathExecution, `{"correlation_id": "c", "results": {"execution_time": "-1s"}}`, "", "", 400, ReasonOutOfRange},
		{"execution time over 24h", PathExecution, `{"correlation_id": "c", "results": {"execution_time": "86401s"}}`, "", "", 400, ReasonOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.rejected(t, tc.reason)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, e.http.URL+tc.path, strings.NewReader(tc.body))
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct{ Error, Reason string }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatalf("error body: %v", err)
			}
			if resp.StatusCode != tc.status || out.Reason != tc.reason || out.Error == "" {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, out, tc.status, tc.reason)
			}
			if got := e.rejected(t, tc.reason); got != before+1 {
				t.Errorf("rejected{%s} went %v -> %v", tc.reason, before, got)
			}
		})
	}
	if n := len(e.sink.all()); n != 0 {
		t.Errorf("rejected hooks emitted %d events", n)
	}
	if got := e.metric(t, "omnibridge_hooks_pending"); got != 0 {
		t.Errorf("rejected hooks left %v pending", got)
	}
}

func TestPendingCapAndTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxPending = 2; c.PendingTTL = time.Minute })
	pre := func(id string) int {
		s, _ := e.post(t, PathExecution, fmt.Sprintf(`{"correlation_id": %q, "pre_context": {"operation": "op-%s"}}`, id, id), nil)
		return s
	}
	if pre("a") != 200 || pre("b") != 200 {
		t.Fatal("pre-contexts under the cap refused")
	}
	if s := pre("a"); s != 200 {
		t.Fatalf("replacing a waiting pre-context refused: %d", s)
	}
	if s := pre("c"); s != http.StatusTooManyRequests {
		t.Fatalf("pre-context over the cap: %d, want 429", s)
	}
	if got := e.rejected(t, ReasonPendingFull); got != 1 {
		t.Errorf("pending_full %v", got)
	}
	e.clock.Advance(time.Minute + time.Second)
	if s := pre("c"); s != 200 {
		t.Fatalf("after expiry: %d", s)
	}
	if got := e.metric(t, "omnibridge_hooks_pending_expired_total"); got != 2 {
		t.Errorf("expired %v, want 2", got)
	}
	// Results for an expired pre-context still make an event, as unknown.
	e.post(t, PathExecution, `{"correlation_id": "a", "results": {"success": true, "execution_time": "1s"}}`, nil)
	e.post(t, PathExecution, `{"correlation_id": "c", "results": {"success": true, "execution_time": "1s"}}`, nil)
	evs := e.sink.all()
	if len(evs) != 2 || evs[0].(*bridgev1.ExecutionIntelligenceEvent).GetPreContext().GetOperation() != unknownOperation ||
		evs[1].(*bridgev1.ExecutionIntelligenceEvent).GetPreContext().GetOperation() != "op-c" {
		t.Errorf("events after expiry: %v", evs)
	}
}

func TestSchemaAndNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	resp, err := e.http.Client().Get(e.http.URL + PathSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var schema map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&schema); err != nil || resp.StatusCode != 200 {
		t.Fatalf("schema: %d %v", resp.StatusCode, err)
	}
	if schema["service"] != service || schema["endpoints"] == nil {
		t.Errorf("schema %v", schema)
	}
	resp2, err := e.http.Client().Get(e.http.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp2.StatusCode)
	}
}
